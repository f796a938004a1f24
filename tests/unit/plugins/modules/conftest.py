"""Fixtures shared by the cni_install and cni_info tests: releases built once, a fake node root."""

from __future__ import annotations

import pytest

from testbed_lib.in_process import FakeRoot, build_releases


@pytest.fixture(scope="module")
def releases(tmp_path_factory):
    return build_releases(tmp_path_factory.mktemp("cache"))


@pytest.fixture
def node(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    return FakeRoot(root)
