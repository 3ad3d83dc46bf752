#!/usr/bin/env bash
# The VM runner must go red: on a failing test, and on a kernel splat in the
# guest log even when every test passes. Both are real guest boots. And
# make check's rerun of failing tests (scripts/vm-rerun.sh) never retries a
# splat, stays red when a test fails again, and says FLAKY when it passes.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
cd "$KVMRS_ROOT"
pass=0 fail=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

expect_red() { # <name> <pattern in output> <vm.sh args...>; output in $tmp/out
	local name=$1 pattern=$2; shift 2
	local out rc
	out=$(scripts/vm.sh --quiet "$@" 2>&1); rc=$?
	printf '%s\n' "$out" > "$tmp/out"
	if [ $rc != 0 ] && grep -q -- "$pattern" <<<"$out"; then
		echo "ok - $name: vm.sh exit $rc, '$(grep -m1 -- "$pattern" <<<"$out")'"; pass=$((pass + 1))
	else
		printf '%s\n' "$out" | tail -12
		echo "not ok - $name: vm.sh exit $rc, expected non-zero and /$pattern/"; fail=$((fail + 1))
	fi
}

# rerun <name> <expected exit> <pattern> <first run output> <list>:
# scripts/vm-rerun.sh, as make check uses it after a failed VM run.
rerun() {
	local name=$1 want=$2 pattern=$3 first=$4 list=$5 out rc
	out=$(scripts/vm-rerun.sh "$first" "$tmp/rerun.log" --suite "$list" 2>&1); rc=$?
	if [ $rc = "$want" ] && grep -q -- "$pattern" <<<"$out"; then
		echo "ok - $name: vm-rerun.sh exit $rc, '$(grep -m1 -- "$pattern" <<<"$out")'"; pass=$((pass + 1))
	else
		printf '%s\n' "$out" | tail -8
		echo "not ok - $name: vm-rerun.sh exit $rc, expected $want and /$pattern/"; fail=$((fail + 1))
	fi
}

echo "flip false" > "$tmp/flip.list"
expect_red "a failing test fails the run" "flip .*FAIL" \
	--suite "$tmp/flip.list" --tests flip --log "$tmp/fail.log"
cp "$tmp/out" "$tmp/fail.out"
expect_red "a kernel splat fails the run although the test passed" "kernel splat in the guest log" \
	--cmd "splat=echo 'WARNING: CPU: 0 PID: 1 at kvm-rs injected test splat' > /dev/kmsg" \
	--cmd "fail-too=false" \
	--log "$tmp/splat.log"
cp "$tmp/out" "$tmp/splat.out"
# make check reruns a VM run's failing tests once; only a pass there is FLAKY
rerun "a failing test is not retried after a kernel splat" 1 "not retried" "$tmp/splat.out" "$tmp/flip.list"
rerun "a test that fails again stays red" 1 "FAILED again: flip" "$tmp/fail.out" "$tmp/flip.list"
echo "flip true" > "$tmp/flip.list"
rerun "a test that passes on the rerun is reported FLAKY" 0 "FLAKY: flip" "$tmp/fail.out" "$tmp/flip.list"
echo "vm-runner: $pass passed, $fail failed"
[ $fail = 0 ]
