#!/usr/bin/env bash
# The VM runner must go red: on a failing test, and on a kernel splat in the
# guest log even when every test passes. Both are real guest boots.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
cd "$KVMRS_ROOT"
pass=0 fail=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

expect_red() { # <name> <pattern in output> <vm.sh args...>
	local name=$1 pattern=$2; shift 2
	local out rc
	out=$(scripts/vm.sh --quiet "$@" 2>&1); rc=$?
	if [ $rc != 0 ] && grep -q -- "$pattern" <<<"$out"; then
		echo "ok - $name: vm.sh exit $rc, '$(grep -m1 -- "$pattern" <<<"$out")'"; pass=$((pass + 1))
	else
		printf '%s\n' "$out" | tail -12
		echo "not ok - $name: vm.sh exit $rc, expected non-zero and /$pattern/"; fail=$((fail + 1))
	fi
}

expect_red "a failing test fails the run" "failing-test .*FAIL" \
	--cmd "failing-test=false" --log "$tmp/fail.log"
expect_red "a kernel splat fails the run although the test passed" "kernel splat in the guest log" \
	--cmd "splat=echo 'WARNING: CPU: 0 PID: 1 at kvm-rs injected test splat' > /dev/kmsg" --log "$tmp/splat.log"
echo "vm-runner: $pass passed, $fail failed"
[ $fail = 0 ]
