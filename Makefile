# SPDX-License-Identifier: GPL-2.0
# kvm-rs: KVM x86 with the TDP MMU fast page fault path in Rust, built out of
# tree. Run `make help` for the targets.

KVMRS_CACHE ?= /var/cache/kvm-rs
export KVMRS_CACHE

# The kernel series (7.3 or 6.12) of the reference tree and of the tests.
KVER ?= 7.3
export KVER
# The reference tree (scripts/kernel.sh builds it into the cache).
REF_KDIR := $(shell KVER=$(KVER) scripts/kernel.sh --print-dir)
KDIR ?= $(REF_KDIR)
# Module parameters for `make load`, e.g. PARAMS="tdp_mmu=N".
PARAMS ?=
AMD_PARAMS ?=
INTEL_PARAMS ?=
# Tests the VM runner runs; see tools/vm/suite.list.
TESTS ?=
# QEMU TCG mode for all of check-vm's tests (default: per test, see
# scripts/check.sh).
TCG ?=

BUILD := scripts/build.sh

.PHONY: all modules setup kernel load unload check check-host \
	check-vm check-intel check-intree check-debug check-kcsan demo bench series series-bisect fmt clippy clean help

all: modules

help:
	@echo 'kvm-rs make targets:'
	@echo '  make                build kvm.ko, kvm-amd.ko, kvm-intel.ko (KDIR=<build tree>, default: reference tree)'
	@echo '  make setup          install packages and tools (Debian 12, root; idempotent)'
	@echo '  make kernel         build or reuse the cached reference Rust-enabled Linux 7.3 tree'
	@echo '  KVER=6.12           with make kernel / make: the 6.12 LTS reference tree and a build against it;'
	@echo '                      with make check-vm / check-intel: the 6.12 lists (tools/vm/*-6.12.list) on it'
	@echo '                      (make KDIR=<tree> picks patches/<series>/ from the tree itself; supported: 7.3, 6.12)'
	@echo '  make load           replace the running kvm modules with ours (PARAMS=, AMD_PARAMS=, INTEL_PARAMS= passed'
	@echo '                      through, empty by default; e.g. INTEL_PARAMS="eptad=0 pml=0", the seed'"'"'s configuration)'
	@echo '  make unload         unload kvm-amd/kvm-intel and kvm'
	@echo '  make check          every test: host cargo tests, module build + clippy/rustfmt, the series (make series --verify),'
	@echo '                      bad-KDIR errors, AMD VM suite (QEMU TCG: several-vCPU tests single-threaded, the rest MTTCG),'
	@echo '                      Intel list (Bochs), the series in-tree (check-intree), and the 6.12 series: its modules'
	@echo '                      with clippy and its lists on both machines (scripts/check.sh 6.12); no retries'
	@echo '  make check-host     host-side tests of the Rust logic only (cargo test, compile-fail, fuzz + coverage, loom)'
	@echo '  make check-vm       the AMD VM suite only (TESTS="name ..." to pick tests, TCG=multi|single for one TCG mode)'
	@echo '  make check-intel    the Intel configurations only: Bochs, VMX + EPT, eptad=0 rust/c, eptad=1 (TESTS= as above)'
	@echo '  make demo           the main job: setup, kernel, modules, then dirty_log_perf_test under perf in a VM'
	@echo '  make bench          Rust vs C vs off vs shadow MMU in emulated time: AMD (QEMU icount) and Intel eptad=0,'
	@echo '                      on a production build (CONFIG_KVM_RUST_FAST_PF alone, scripts/build.sh --production)'
	@echo '                      (Bochs: the seed'"'"'s "Iteration 2 dirty memory time", "Writing to idle memory"); table, CSV, PNG;'
	@echo '                      of the KVER series, or SERIES="7.3 6.12" for both in one table and chart'
	@echo '  make check-debug    the VM suite on a debug kernel (KASAN, lockdep, PROVE_RCU), differential mode on'
	@echo '  make check-kcsan    multi-vCPU tests on a KCSAN kernel, rust/c/stock: fails on a KCSAN report in kvm-rs code,'
	@echo '                      or when KCSAN misses the planted race of its self-check (KCSAN samples; it sees'
	@echo '                      the Rust'"'"'s atomics, not its plain accesses). KCSAN_PLANT=1: the planted race in'
	@echo '                      every test (must fail); KCSAN_CONFIGS="rust c stock", KCSAN_TESTS= (kcsan.list names)'
	@echo '  make series         the in-tree RFC series against the pristine 7.3 source (git format-patch) in build/series/'
	@echo '  make check-intree   the series built in-tree (option on, and off), booted on both machines with its modules'
	@echo '  make series-bisect  arch/x86/kvm built after every patch of the series, options on and off (9 builds)'
	@echo '  make fmt            rustfmt the crate with the kernel tree'"'"'s .rustfmt.toml'
	@echo '  make clean          remove build/ (the kernel cache in $$KVMRS_CACHE stays)'
	@echo 'Variables: KDIR=<kernel build tree>  KVMRS_CACHE=$(KVMRS_CACHE)  CLIPPY=1  LLVM=<prefix or 1>'

setup:
	scripts/setup.sh

kernel:
	scripts/kernel.sh

modules:
	$(BUILD) --kdir "$(KDIR)" $(if $(CLIPPY),--clippy) $(if $(LLVM),--llvm "$(LLVM)")

clippy:
	$(BUILD) --kdir "$(KDIR)" --clippy

fmt:
	scripts/rustfmt.sh --fix

load:
	scripts/load.sh --kdir "$(KDIR)" --params "$(PARAMS)" --amd-params "$(AMD_PARAMS)" --intel-params "$(INTEL_PARAMS)"

unload:
	scripts/load.sh --unload

check:
	scripts/check.sh

check-host:
	scripts/check.sh host

check-vm:
	TCG=$(TCG) scripts/check.sh vm $(TESTS)

check-intel:
	scripts/check.sh intel $(TESTS)

check-intree:
	scripts/check.sh intree

demo:
	scripts/demo.sh

bench:
	scripts/bench.sh $(if $(SERIES),--series "$(SERIES)")

check-debug:
	scripts/check-debug.sh

check-kcsan:
	scripts/check-kcsan.sh

series:
	scripts/series.sh

series-bisect:
	scripts/intree.sh bisect

clean:
	rm -rf build tools/host/target
