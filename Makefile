# Developer and CI entry points. `make test` is what .ci/run executes.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c

VENV := .venv/bin
export ANSIBLE_COLLECTIONS_PATH := $(CURDIR)/.cache/collections

.PHONY: lock bootstrap runtimes vm-image vm-images vm-images-ci vm-tests vm-tests-ci vm-lane node-lane-vm demo test checks node-tests node-lane sanity lint unit core-matrix integration reliability molecule galaxy docs changelog awx bench bench-smoke power-cut integration-parallel

bootstrap:
	tools/bootstrap

# Regenerates the hashed dependency locks (tests/requirements*.txt, tools/requirements-lock.txt)
# from their .in files; `make lock ARGS="--upgrade-package tomlkit"` bumps one package.
lock:
	tools/lock $(ARGS)

demo: bootstrap
	$(VENV)/python tools/testbed.py demo

# Three lanes at once, each in order: the checks that run on this machine alone, then the
# reliability tests; the integration files on two workers, which spend much of their time waiting on
# node boots and runtimes, so they share the CPUs with the checks well; and the VM lane (its images,
# part of tests/vm), then the Molecule scenarios and the bench's smoke run. The integration lane, the
# longest, starts once the runtimes are built; Molecule, whose nodes run the built containerd too,
# comes after the VM tests, by which time they are (`runtimes` before it is then a no-op). Each
# target's output is printed whole when it ends.
# Each lane ends with its wall time, so CI's log shows which one sets the total.
timed = start=$$SECONDS; rc=0; $(1) || rc=$$?; echo "make: $@ took $$((SECONDS - start)) s, exit $$rc"; exit $$rc

test: bootstrap
	$(MAKE) --no-print-directory --keep-going -j4 --output-sync=target checks node-lane node-lane-vm

checks:
	@$(call timed,$(MAKE) --no-print-directory --keep-going -j1 sanity lint unit core-matrix galaxy docs changelog awx reliability)

node-tests:
	$(MAKE) --no-print-directory --keep-going -j1 runtimes integration molecule bench-smoke

node-lane: runtimes
	@$(call timed,$(MAKE) --no-print-directory --keep-going -j1 integration-parallel)

# containerd releases Debian does not package, built from their tags, and a node rootfs for each
# (testbed_lib/runtimes.py): the node lane's first step, so a cold build runs beside the checks.
runtimes:
	$(VENV)/python tools/testbed.py runtimes

# VM nodes on Debian's own kernel under QEMU (testbed_lib/vm.py): the images are built once from the
# cached bookworm rootfs (nothing when warm), then tests/vm boots VMs under software emulation.
# `make vm-lane` runs all of tests/vm. Inside `make test` the VM lane runs what proves the
# collection's own code on a kernel of its own: SELinux labels on an enforcing kernel and power
# cuts behind dm-log-writes, plus the lane's quick checks. The Flatcar-shaped VM's two reboots and
# the lane's own boot-and-reboot test stay in `make vm-lane`: under emulation each costs minutes of
# a CPU the other lanes share, and they test the test bed and the roles' OS vars, which the node
# lanes cover too.
VM_CI_TESTS := tests/vm/test_selinux.py tests/vm/test_power_cut.py tests/vm/test_vm_node.py
VM_CI_DESELECT := --deselect tests/vm/test_vm_node.py::test_a_vm_answers_ansible_over_ssh_reboots_and_powers_off

vm-image: bootstrap
	$(MAKE) --no-print-directory vm-images

vm-lane: bootstrap
	$(MAKE) --no-print-directory --keep-going -j1 vm-images vm-tests

node-lane-vm:
	@$(call timed,$(MAKE) --no-print-directory --keep-going -j1 vm-images-ci vm-tests-ci runtimes molecule bench-smoke)

vm-images: vm-images-ci
	$(VENV)/python tools/testbed.py vm-image-flatcar

# The common image and the SELinux one.
vm-images-ci:
	$(VENV)/python tools/testbed.py vm-image

vm-tests:
	$(VENV)/pytest -q -rA --durations=10 tests/vm

vm-tests-ci:
	$(VENV)/pytest -q -rA --durations=10 $(VM_CI_DESELECT) $(VM_CI_TESTS)

# Every crash state a power cut can leave during install, upgrade, rollback and uninstall, from
# dm-log-writes in a VM, for both ext4 data modes (bench/power_cut.py; tests/vm checks every 4th).
# Needs root; takes a while: not part of `make test`.
power-cut: vm-image
	$(VENV)/python bench/power_cut.py

sanity:
	tools/sanity

lint:
	PATH="$(CURDIR)/.venv/bin:$$PATH" $(VENV)/ansible-lint

unit:
	$(VENV)/pytest -q tests/unit

integration:
	$(VENV)/pytest -q --durations=15 tests/integration

# The same files on two pytest-xdist workers, each taking the next whole file (its module fixtures
# and nodes stay together) as it comes free, longest first (tests/integration/conftest.py).
integration-parallel:
	$(VENV)/pytest -q --durations=15 -n 2 --dist loadfile tests/integration

reliability:
	$(VENV)/pytest -q -rA --durations=10 tests/reliability

molecule:
	tools/molecule

# Build the tarball, galaxy-importer, install into a clean path and run the README example there,
# ansible-builder on the EE definition.
galaxy:
	tools/galaxy_check

# ansible-test sanity on every other ansible-core minor from the floor (2.16) to the newest
# pre-release, unit tests on the floor and the newest two: host venvs for 2.16-2.18, a cached trixie root (Python 3.13) for 2.20+.
core-matrix:
	tools/core_matrix

docs:
	tools/docs

changelog:
	$(VENV)/antsibull-changelog lint
	$(VENV)/antsibull-changelog lint-changelog-yaml changelogs/changelog.yaml

# The AWX objects as code parse and resolve every awx.awx module, use only documented options, the
# workflow runs verify, upgrade, verify, and nothing slices the upgrade (tests/unit/test_awx_examples.py).
awx:
	$(VENV)/ansible-playbook -i localhost, --syntax-check examples/awx/controller.yml
	$(VENV)/pytest -q tests/unit/test_awx_examples.py

# The comparison with the common approach (bench/compare.py): 1, 20 and 100 nodes over the test bed's
# own connection, 1, 20 and 50 over SSH, first install, re-run, verify and upgrade, 3 rounds, with the
# controller's CPU and memory per run and the 1,000-node projection (bench/project.py); writes
# bench/results/latest.{json,png}. About 2 hours on the quiet 2-CPU machine (one round of both transports
# took 38 minutes, verify at 100 nodes 5 of them): not part of `make test`. bench/verify_against.py
# compares verify.yml with an earlier commit's on the same nodes.
# Other sizes: `make bench BENCH_ARGS="--sizes 1,20 --ssh-sizes 1,20 --rounds 1"`.
bench: bootstrap
	$(VENV)/python bench/compare.py --profile $(BENCH_ARGS)

# One round on one and two nodes, so the bench harness cannot rot: the overlay nodes, the controller's
# CPU and memory accounting, verify, the floor and the projection (checks the runs, asserts no timing).
bench-smoke:
	$(VENV)/python bench/compare.py --smoke
