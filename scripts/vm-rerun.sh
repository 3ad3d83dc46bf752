#!/usr/bin/env bash
# Rerun, once, the tests a VM run failed, when failing tests were its only
# problem: the "vm: rerunnable: <tests>" line scripts/vm.sh prints then.
# Under emulation a stock selftest can fail on timing alone; a kernel
# report, a hang, a crash or a module load failure is never retried.
#
#   scripts/vm-rerun.sh <vm.sh output of the first run> <guest log of the rerun>
#                       [vm.sh options of the first run: --kvm-params, --suite...]
#
# Exit 0: every failing test PASSed (not SKIPped) in a fresh VM; it prints
# "vm-rerun: FLAKY: <tests>". Exit 1: the run is not retryable, or a test
# failed again, or a usage error.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
cd "$KVMRS_ROOT"

[ $# -ge 2 ] || die "usage: scripts/vm-rerun.sh <first vm.sh output> <rerun guest log> [vm.sh options]"
first=$1 log=$2
shift 2
[ -f "$first" ] || die "vm-rerun: no such file: $first"

failing=$(sed -n 's/^vm: rerunnable: //p' "$first" | tail -1)
if [ -z "$failing" ]; then
	echo "vm-rerun: not retried: the first run had a kernel report, a hang, a crash, a load failure or no failing test"
	exit 1
fi

step "vm-rerun: rerunning the failing tests once in a fresh VM: $failing"
out=$(mktemp)
trap 'rm -f "$out"' EXIT
scripts/vm.sh --quiet "$@" --tests "$failing" --log "$log" > "$out" 2>&1
rc=$?
grep -E '^(vm: |[^ ]+ +(PASS|FAIL|SKIP|TIMEOUT|CRASH|NOT-RUN) )' "$out" | sed 's/^/  rerun: /'
for t in $failing; do	# each must PASS, not SKIP
	grep -qE "^$t +PASS " "$out" || rc=1
done
if [ $rc != 0 ]; then
	echo "vm-rerun: FAILED again: $failing (guest log: $log)"
	exit 1
fi
echo "vm-rerun: FLAKY: $failing failed once and passed on a rerun (guest log: $log)"
