"""The standard-library CRI client against a real gRPC server (grpcio) on a unix socket.

The server implements RuntimeService Version and Status with the generated CRI stubs; the
client under test speaks HTTP/2 and protobuf by hand. Integration tests use containerd itself.
"""
from __future__ import annotations

from concurrent import futures

import grpc
import pytest
from cri_api.v1 import api_pb2, api_pb2_grpc

from ansible_collections.nodeprep.cni.plugins.module_utils import _containerd_cri as cri

LONG_MESSAGE = "Network plugin returns error: " + "x" * 300  # longer than one HPACK length byte


class Runtime(api_pb2_grpc.RuntimeServiceServicer):
    def Version(self, request, context):
        return api_pb2.VersionResponse(version="0.1.0", runtime_name="containerd", runtime_version="2.1.9",
                                       runtime_api_version="v1")

    def Status(self, request, context):
        conditions = [api_pb2.RuntimeCondition(type="RuntimeReady", status=True),
                      api_pb2.RuntimeCondition(type="NetworkReady", status=False, reason="NetworkPluginNotReady",
                                               message=LONG_MESSAGE)]
        info = {"lastCNILoadStatus": "cni config load failed"} if request.verbose else {}
        return api_pb2.StatusResponse(status=api_pb2.RuntimeStatus(conditions=conditions), info=info)


@pytest.fixture
def socket_path(tmp_path):
    path = str(tmp_path / "containerd.sock")
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    api_pb2_grpc.add_RuntimeServiceServicer_to_server(Runtime(), server)
    server.add_insecure_port("unix://" + path)
    server.start()
    yield path
    server.stop(0)


def test_version(socket_path):
    assert cri.version(socket_path) == {"runtime_name": "containerd", "runtime_version": "2.1.9",
                                        "runtime_api_version": "v1"}


def test_status_conditions_and_verbose_info(socket_path):
    status = cri.status(socket_path)
    assert status["conditions"]["RuntimeReady"] == {"status": True, "reason": "", "message": ""}
    assert status["conditions"]["NetworkReady"] == {"status": False, "reason": "NetworkPluginNotReady",
                                                    "message": LONG_MESSAGE}
    assert status["info"] == {"lastCNILoadStatus": "cni config load failed"}


def test_unimplemented_method_is_an_error(socket_path):
    with pytest.raises(cri.CRIError, match="answered ListPodSandbox with an error"):
        cri.call(socket_path, "ListPodSandbox")


def test_no_socket(tmp_path):
    with pytest.raises(cri.CRIError, match="cannot connect"):
        cri.status(str(tmp_path / "absent.sock"))


def test_answer_as_the_info_modules_report_it(socket_path, tmp_path):
    report, runtime_version = cri.answer(socket_path, 10.0, "containerd")
    assert runtime_version == "2.1.9"
    assert report["reachable"] and report["error"] == "" and report["runtime_ready"] and not report["network_ready"]
    assert report["conditions"]["NetworkReady"]["reason"] == "NetworkPluginNotReady"
    assert report["last_cni_load_status"] == "cni config load failed"
    missing, no_version = cri.answer(str(tmp_path / "absent.sock"), 10.0, "CRI-O")
    assert no_version == "" and not missing["reachable"] and not missing["network_ready"]
    assert missing["error"] == "no CRI socket at %s (CRI-O is not running)" % (tmp_path / "absent.sock")
    (tmp_path / "not-a.sock").write_text("")
    broken, _broken_version = cri.answer(str(tmp_path / "not-a.sock"), 10.0, "containerd")
    assert not broken["reachable"] and "cannot connect" in broken["error"]


def test_protobuf_varints_round_trip():
    for value in (0, 1, 127, 128, 300, 2 ** 35):
        encoded = cri._varint(value)  # pylint: disable=protected-access
        assert cri._read_varint(encoded, 0) == (value, len(encoded))  # pylint: disable=protected-access
