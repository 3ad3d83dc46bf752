#!/usr/bin/env bash
# `make check`: every test of kvm-rs, cheapest first.
#
#   scripts/check.sh [all|host|build|errors|vm] [vm test names...]
#
# Stages: setup (idempotent) -> host cargo tests -> reference kernel (cached)
# -> module build with clippy + rustfmt -> bad-input errors -> VM suite
# (tdp_mmu=Y with the Rust and the C fast path, tdp_mmu=N). Ends with a
# table and a "N passed, N failed" line; exits non-zero on any failure.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
cd "$KVMRS_ROOT"

what=${1:-all}
shift || true
logdir=$KVMRS_ROOT/build/logs
mkdir -p "$logdir"
declare -a names=() results=() times=()
failed=0 passed=0 flaky=0

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
		*FLAKY*)
			echo
			echo "--- ${names[$i]}: FLAKY, why its first run failed ($logdir/${names[$i]}.log) ---"
			failure_lines "$logdir/${names[$i]}.log"
			;;
		esac
	done
	echo "check: $passed passed ($flaky flaky: passed on a rerun of the failing tests), $failed failed"
	[ $failed = 0 ]
	exit $?
}

stage_setup() {
	run setup scripts/setup.sh || summary
	run kernel scripts/kernel.sh || summary
}

stage_host() {
	run host-cargo-test bash -c 'cd tools/host && cargo test --release 2>&1'
	run host-compile-fail tools/host/compile-fail.sh
	run host-fuzz tools/host/fuzz.sh
	if [ -x tools/host/run-loom.sh ]; then
		run host-loom tools/host/run-loom.sh
	fi
}

stage_build() {
	run rustfmt scripts/rustfmt.sh
	run checkpatch scripts/checkpatch.sh
	run docs scripts/check-docs.sh
	run modules-clippy scripts/build.sh --kdir "$(scripts/kernel.sh --print-dir)" --clippy || summary
	run modules-symbols scripts/check-modules.sh
}

stage_errors() {
	run bad-input-errors scripts/test-errors.sh
}

# One VM run per configuration; vm.sh prints per-test results and fails on
# any test failure or kernel splat.
stage_vm() {
	local targs=() suite=()
	[ $# -gt 0 ] && targs=(--tests "$*")
	# a list file given as the tests is also where a rerun picks its tests
	[ $# = 1 ] && [ -f "$1" ] && suite=(--suite "$1")
	run selftests-build scripts/selftests.sh || return
	run vm-runner-goes-red scripts/test-vm-runner.sh
	# <check name suffix>:<kvm module parameters>
	local cfg name
	for cfg in "Y-rust:tdp_mmu=Y tdp_fast_pf=rust" "Y-c:tdp_mmu=Y tdp_fast_pf=c" \
		"N:tdp_mmu=N"; do
		name=vm-tdp_mmu=${cfg%%:*}
		run "$name" scripts/vm.sh --quiet --kvm-params "${cfg#*:}" \
			"${targs[@]}" --log "$logdir/guest-${cfg%%:*}.log" ||
			rerun_failed_tests "$name" "$logdir/guest-${cfg%%:*}-rerun.log" \
				--kvm-params "${cfg#*:}" "${suite[@]}"
	done
}

# rerun_failed_tests <check> <rerun guest log> [vm.sh options]: when a VM
# run's only problem is failing tests, scripts/vm-rerun.sh runs them once
# more in a fresh VM; if they all pass there the check passes and is
# reported as FLAKY, with the first run's failure, in the table and before
# the verdict. A kernel report, a hang or a crash is never retried.
rerun_failed_tests() {
	local check=$1 log=$2
	shift 2
	scripts/vm-rerun.sh "$logdir/$check.log" "$log" "$@" 2>&1 | tee "$logdir/$check-rerun.log"
	[ "${PIPESTATUS[0]}" = 0 ] || return 1
	local last=$(( ${#results[@]} - 1 ))
	results[last]="PASS, FLAKY:$(sed -n 's/^vm: rerunnable://p' "$logdir/$check.log") failed once (logs: $logdir/$check.log, $log)"
	failed=$((failed - 1)); passed=$((passed + 1)); flaky=$((flaky + 1))
}

case "$what" in
all) stage_setup; stage_host; stage_build; stage_errors; stage_vm ;;
host) stage_host ;;
build) stage_setup; stage_build ;;
errors) stage_errors ;;
vm) stage_setup; stage_build; stage_vm "$@" ;;

*) die "check: unknown stage '$what' (all, host, build, errors, vm)" ;;
esac
summary
