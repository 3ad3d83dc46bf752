#!/usr/bin/env bash
# `make check`: every test of kvm-rs, cheapest first.
#
#   scripts/check.sh [all|host|build|errors|vm|intel|intree|6.12] [vm test names...]
#
# Stages: setup (idempotent) -> host cargo tests -> reference kernel (cached)
# -> module build with clippy + rustfmt -> the in-tree series (make series:
# applies, checkpatch, same files as the module build) -> bad-input errors -> AMD VM suite
# (QEMU TCG: tdp_mmu=Y with the Rust and the C fast path, tdp_mmu=N; the
# tests with several vCPUs under single-threaded TCG, the rest under MTTCG)
# -> Intel list (Bochs: eptad=0 rust + differential mode, eptad=0 c,
# eptad=1 rust) -> the in-tree series built and booted on both machines;
# between build and errors the 6.12 LTS series (stage_612: its tree, its
# modules with clippy, its selftests, its shorter lists on both machines).
# Ends with
# a table and a "N passed, N failed" line; exits non-zero on any failure.
# Nothing is retried.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
cd "$KVMRS_ROOT"

what=${1:-all}
shift || true
# The whole check covers every series itself (stage_612 for 6.12); KVER=
# picks the series of the vm and intel stages (make KVER=6.12 check-vm).
case "$what" in
vm|intel) ;;
*) [ "$KVER" = 7.3 ] || die "check: '$what' covers every series from KVER=7.3 (the default); KVER=$KVER applies to check-vm and check-intel" ;;
esac
# the series' lists: tools/vm/suite.list for 7.3, suite-<series>.list else
lsfx=""; [ "$KVER" = 7.3 ] || lsfx=-$KVER
logdir=$KVMRS_ROOT/build/logs
mkdir -p "$logdir"
declare -a names=() results=() times=()
failed=0 passed=0

# run <name> <command...>: run one check, log to build/logs/<name>.log.
run() {
	local name=$1; shift
	local log=$logdir/$name.log start rc
	step "check: $name"
	start=$(date +%s)
	"$@" 2>&1 | tee "$log"	# a pipeline: the log is complete when it ends
	rc=${PIPESTATUS[0]}
	names+=("$name"); times+=("$(( $(date +%s) - start ))s")
	if [ $rc = 0 ]; then results+=(PASS); passed=$((passed + 1))
	else results+=("FAIL (log: $log)"); failed=$((failed + 1)); fi
	return $rc
}

# failure_lines <log>: the lines of a failing check's log that explain it:
# for a VM run, from vm.sh's JSON result: the failing tests' verdicts, why
# (assertion, guest exit reason), their last output lines and any kernel
# report; otherwise the log's tail.
failure_lines() {
	local log=$1 json
	[ -f "$log" ] || { echo "(no log)"; return; }
	json=$(sed -n 's/^vm: result: //p' "$log" | tail -1)
	if [ -n "$json" ] && [ -f "$json" ]; then
		grep -E '^vm: FAILED' "$log" | head -5
		python3 - "$json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print(f"guest log {r['log']} (result {sys.argv[1]}), tcg={r['tcg']} smp={r['smp']} params: {r['params_read_back']}")
for t in r["tests"]:
    if t["result"] in ("PASS", "SKIP"):
        continue
    print(f"  {t['name']}: {t['result']} {t['note']}")
    for l in t.get("why", []):
        print(f"    why: {l}")
    for l in t.get("output_tail", []):
        print(f"    | {l}")
for l in r["kernel_reports"]:
    print(f"  kernel report: {l}")
PY
	else
		tail -n 15 "$log"
	fi
}

summary() {
	echo
	printf '%-34s %-7s %s\n' CHECK TIME RESULT
	local i
	for i in "${!names[@]}"; do
		printf '%-34s %-7s %s\n' "${names[$i]}" "${times[$i]}" "${results[$i]}"
	done
	# CI shows the end of the output: repeat what failed, with the lines of
	# each failing log that say why, right before the verdict.
	for i in "${!names[@]}"; do
		case "${results[$i]}" in
		FAIL*)
			echo
			echo "--- ${names[$i]}: why it failed ($logdir/${names[$i]}.log) ---"
			failure_lines "$logdir/${names[$i]}.log"
			;;
		esac
	done
	echo "check: $passed passed, $failed failed"
	[ $failed = 0 ]
	exit $?
}

stage_setup() {
	run setup scripts/setup.sh || summary
	run kernel scripts/kernel.sh || summary
}

stage_host() {
	# The rust/ files under each supported series' semantics: 7.3 (the
	# default) and 6.12 (cfg(kvm_rs_6_12), as patches/6.12 builds them).
	run host-cargo-test bash -c 'cd tools/host && cargo test --release 2>&1'
	run host-cargo-test-6.12 bash -c 'cd tools/host && cargo test --release --features linux-6-12 2>&1'
	run host-compile-fail tools/host/compile-fail.sh
	run host-fuzz tools/host/fuzz.sh
	if [ -x tools/host/run-loom.sh ]; then
		run host-loom tools/host/run-loom.sh
		run host-loom-6.12 tools/host/run-loom.sh --features linux-6-12
	fi
}

stage_build() {
	run rustfmt scripts/rustfmt.sh
	run checkpatch scripts/checkpatch.sh
	run docs scripts/check-docs.sh
	run modules-clippy scripts/build.sh --kdir "$(scripts/kernel.sh --print-dir)" --clippy || summary
	run modules-symbols scripts/check-modules.sh
	run series scripts/series.sh --verify
}

# check-vm and check-intel: the build stage for 7.3; for another KVER its
# modules against its reference tree (build/<release>, what vm.sh loads).
stage_build_kver() {
	if [ "$KVER" = 7.3 ]; then stage_build; return; fi
	run "modules-$KVER-clippy" scripts/build.sh --kdir "$(scripts/kernel.sh --print-dir)" --clippy || summary
}

# The 6.12 LTS series: its reference tree (cached like 7.3's), the modules
# built against it with clippy into their own directory (build/current stays
# the 7.3 build the 7.3 VM stages load), 6.12's own stock selftests plus
# ours, and a shorter VM list than 7.3's on both machines
# (tools/vm/suite-6.12.list with the Rust path and with tdp_mmu=N;
# tools/vm/intel-6.12.list in the seed's configuration with the
# differential mode). Its host tests run in stage_host.
VM612_CONFIGS=("Y-rust:tdp_mmu=Y tdp_fast_pf=rust" "N:tdp_mmu=N")
stage_612() {
	local kdir mods
	run kernel-6.12 env KVER=6.12 scripts/kernel.sh || return 0
	kdir=$(KVER=6.12 scripts/kernel.sh --print-dir)
	run modules-6.12-clippy scripts/build.sh --kdir "$kdir" --clippy --out "$KVMRS_ROOT/build/6.12-check" \
		|| return 0
	run selftests-build-6.12 env KVER=6.12 scripts/selftests.sh || return 0
	mods=$KVMRS_ROOT/build/6.12-check/arch/x86/kvm
	vm_suite 6.12 tools/vm/suite-6.12.list VM612_CONFIGS --kdir "$kdir" --modules "$mods"
	run intel-6.12-eptad0-rust scripts/vm.sh --machine intel --quiet --kdir "$kdir" --modules "$mods" \
		--kvm-params "tdp_mmu=Y tdp_fast_pf=rust tdp_fast_pf_diff=Y" --intel-params "ept=1 eptad=0 pml=0" \
		--suite tools/vm/intel-6.12.list --log "$logdir/guest-6.12-intel-eptad0-rust.log"
}

stage_errors() {
	run bad-input-errors scripts/test-errors.sh
}

# The suite's tests that run two or more vCPUs at once. Under QEMU's
# multi-threaded TCG their L2 guests hang or triple-fault at a low rate with
# every module set, the stock reference modules and tdp_mmu=N included, and
# never did under single-threaded TCG (Documentation/kvm-rs/testing.rst,
# "Flaky tests": the measured rates). make check runs them with
# `vm.sh --tcg single` and the rest with MTTCG (real parallel guest CPUs,
# e.g. the switch test's mode flips against the vCPU). The exceptions, run
# under MTTCG because they are about vCPUs in parallel, with their own
# measured rates: fast_pf-race and diff-race (two vCPUs' fast paths on one
# SPTE; they fail if no compare-exchange was lost) and fast_pf-spurious.
# TCG=multi|single runs every test in that mode instead.
SMP_TESTS="dirty_log_perf-v2 dirty_log_perf-o dirty_log_perf-thp
	dirty_log_perf-thp-o dirty_log_perf-v4 dirty_log_perf-v4-o dirty_log_page_split
	memslot_modification diff-mode"

# vm_suite <prefix> <list> <configs array name> [vm.sh args...] [-- tests...]:
# for each "<name>:<kvm params>" of the array, two VM runs (MTTCG,
# single-threaded TCG, as SMP_TESTS and TCG= split the tests); vm.sh prints
# per-test results and fails on any test failure, hang or kernel report.
# Check names: vm-<prefix>tdp_mmu=<name>-mttcg|-tcg1.
vm_suite() {
	local prefix=$1 listfile=$2 all=() multi=() single=() t args=() cfg name
	local -n cfgs=$3
	shift 3
	while [ $# -gt 0 ] && [ "$1" != -- ]; do args+=("$1"); shift; done
	[ $# -gt 0 ] && shift
	if [ $# -gt 0 ]; then
		# names or globs, expanded against the list as vm.sh does
		local pat n found
		for pat in ${*//,/ }; do
			found=0
			while read -r n; do
				# shellcheck disable=SC2254 # glob match on purpose
				case "$n" in $pat) all+=("$n"); found=1 ;; esac
			done < <(grep -v -E '^[[:space:]]*(#|$)' "$listfile" | awk '{print $1}')
			[ $found = 1 ] || die "check: no test '$pat' in $listfile"
		done
	else
		mapfile -t all < <(grep -v -E '^[[:space:]]*(#|$)' "$listfile" | awk '{print $1}')
	fi
	case "${TCG:-}" in
	"") for t in "${all[@]}"; do
		if [[ " $(echo $SMP_TESTS) " == *" $t "* ]]; then single+=("$t"); else multi+=("$t"); fi
	    done ;;
	multi) multi=("${all[@]}") ;;
	single) single=("${all[@]}") ;;
	*) die "check: TCG wants multi or single, not '$TCG'" ;;
	esac
	[ -n "$prefix" ] && prefix=$prefix-
	for cfg in "${cfgs[@]}"; do
		name=vm-${prefix}tdp_mmu=${cfg%%:*}
		if [ ${#multi[@]} -gt 0 ]; then
			run "$name-mttcg" scripts/vm.sh --quiet --tcg multi --kvm-params "${cfg#*:}" \
				--suite "$listfile" "${args[@]}" --tests "${multi[*]}" \
				--log "$logdir/guest-$prefix${cfg%%:*}-mttcg.log"
		fi
		if [ ${#single[@]} -gt 0 ]; then
			run "$name-tcg1" scripts/vm.sh --quiet --tcg single --kvm-params "${cfg#*:}" \
				--suite "$listfile" "${args[@]}" --tests "${single[*]}" \
				--log "$logdir/guest-$prefix${cfg%%:*}-tcg1.log"
		fi
	done
}

# The AMD suite of the KVER series (tools/vm/suite.list for 7.3), or a list
# file given as the only argument, or names/globs from it, in three
# configurations.
VM_CONFIGS=("Y-rust:tdp_mmu=Y tdp_fast_pf=rust" "Y-c:tdp_mmu=Y tdp_fast_pf=c" "N:tdp_mmu=N")
stage_vm() {
	local listfile=tools/vm/suite$lsfx.list prefix=""
	[ "$KVER" = 7.3 ] || prefix=$KVER
	if [ $# = 1 ] && [ -f "$1" ]; then
		listfile=$1; shift
	fi
	run selftests-build scripts/selftests.sh || return
	run vm-runner-goes-red scripts/test-vm-runner.sh
	vm_suite "$prefix" "$listfile" VM_CONFIGS -- "$@"
}

# Intel VMX + EPT under Bochs (one CPU, emulated time), tools/vm/intel.list
# in three configurations:
#   eptad0-rust  the seed's configuration (kvm_intel eptad=0 pml=0): the
#                fast path fixes access-tracking and write-protection
#                faults; Rust path, differential mode on for every test
#   eptad0-c     the same with the C path
#   eptad1-rust  A/D bits on (pml=0, so dirty logging still write-protects):
#                write-protection faults only
# <name>|<kvm params>|<kvm_intel params>
INTEL_CONFIGS=(
	"eptad0-rust|tdp_mmu=Y tdp_fast_pf=rust tdp_fast_pf_diff=Y|ept=1 eptad=0 pml=0"
	"eptad0-c|tdp_mmu=Y tdp_fast_pf=c|ept=1 eptad=0 pml=0"
	"eptad1-rust|tdp_mmu=Y tdp_fast_pf=rust|ept=1 eptad=1 pml=0"
)
stage_intel() {
	local list=tools/vm/intel$lsfx.list cfg name kp ip tests=() prefix=""
	[ "$KVER" = 7.3 ] || prefix=$KVER-
	[ $# = 0 ] || tests=(--tests "$*")	# default: all of $list
	[[ " ${names[*]} " == *" selftests-build "* ]] || run selftests-build scripts/selftests.sh || return
	for cfg in "${INTEL_CONFIGS[@]}"; do
		IFS='|' read -r name kp ip <<< "$cfg"
		run "intel-$prefix$name" scripts/vm.sh --machine intel --quiet --kvm-params "$kp" \
			--intel-params "$ip" --suite "$list" "${tests[@]}" \
			--log "$logdir/guest-${prefix}intel-$name.log"
	done
}

# The in-tree form (scripts/intree.sh): build/series applied to the pristine
# source and built in-tree (CONFIG_KVM_RUST_FAST_PF=y and the differential
# check), its arch/x86/kvm with the options off, and the in-tree kernel
# booted with its own modules on both machines, and with the option-off
# modules (the C path, no kvm-rs parameter, counter or symbol).
stage_intree() {
	local ib
	ib=$(scripts/intree.sh --print-dir)
	[[ " ${names[*]} " == *" selftests-build "* ]] || run selftests-build scripts/selftests.sh || return
	run intree-build scripts/intree.sh off || return
	run intree-amd scripts/vm.sh --quiet --tcg single --kdir "$ib" --modules "$ib/arch/x86/kvm" \
		--kvm-params "tdp_mmu=Y tdp_fast_pf=rust" --tests "fast_pf-4k,dirty_log_perf-v2" \
		--log "$logdir/guest-intree-amd.log"
	run intree-intel scripts/vm.sh --machine intel --quiet --kdir "$ib" --modules "$ib/arch/x86/kvm" \
		--kvm-params "tdp_mmu=Y tdp_fast_pf=rust tdp_fast_pf_diff=Y" --intel-params "ept=1 eptad=0 pml=0" \
		--tests "fast_pf-access,diff-mode" --log "$logdir/guest-intree-intel.log"
	run intree-off-amd scripts/vm.sh --quiet --tcg single --kdir "$ib" \
		--modules "$KVMRS_ROOT/build/intree-off/arch/x86/kvm" --kvm-params "tdp_mmu=Y" --tests fast_pf-4k \
		--cmd "no-kvm-rs=test ! -e /sys/module/kvm/parameters/tdp_fast_pf && test ! -e /sys/kernel/debug/kvm_rs && test -e /sys/kernel/debug/kvm/pf_fast && test ! -e /sys/kernel/debug/kvm/rust_fast_pf_fixed && ! grep -q kvm_rs /proc/kallsyms" \
		--log "$logdir/guest-intree-off-amd.log"
}

case "$what" in
all) stage_setup; stage_host; stage_build; stage_612; stage_errors; stage_vm; stage_intel; stage_intree ;;
intree) stage_setup; stage_build; stage_intree ;;
6.12) stage_612 ;;
host) stage_host ;;
build) stage_setup; stage_build ;;
errors) stage_errors ;;
vm) stage_setup; stage_build_kver; stage_vm "$@" ;;
intel) stage_setup; stage_build_kver; stage_intel "$@" ;;

*) die "check: unknown stage '$what' (all, host, build, errors, vm, intel, intree, 6.12)" ;;
esac
summary
