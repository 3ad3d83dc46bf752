#!/usr/bin/env bash
# The VM runner must go red: on a failing test, and on a kernel splat in the
# guest log even when every test passes, in both TCG modes make check uses
# and on the Intel machine (Bochs).
# All are real guest boots; the JSON result must say the same as the exit
# status.
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

# json_says <json> <verdict> <test=RESULT> [kernel report text]
json_says() {
	local got
	got=$(python3 - "$@" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
want, (name, res) = sys.argv[2], sys.argv[3].split("=")
t = {t["name"]: t["result"] for t in r["tests"]}
ok = r["verdict"] == want and t.get(name) == res
if len(sys.argv) > 4:
    ok = ok and any(sys.argv[4] in l for l in r["kernel_reports"])
print(("ok" if ok else "bad") + f" verdict={r['verdict']} {name}={t.get(name)} reports={len(r['kernel_reports'])}")
PY
	)
	if [[ "$got" == ok* ]]; then echo "ok - JSON result $1: ${got#ok }"; pass=$((pass + 1))
	else echo "not ok - JSON result $1: ${got#bad }"; fail=$((fail + 1)); fi
}

echo "flip false" > "$tmp/flip.list"
for tcg in multi single; do
	expect_red "a failing test fails the run (tcg $tcg)" "flip .*FAIL" \
		--tcg "$tcg" --suite "$tmp/flip.list" --tests flip --log "$tmp/fail-$tcg.log"
	json_says "$tmp/fail-$tcg.json" "FAIL" "flip=FAIL"
done
expect_red "a kernel splat fails the run although the test passed" "kernel splat in the guest log" \
	--cmd "splat=echo 'WARNING: CPU: 0 PID: 1 at kvm-rs injected test splat' > /dev/kmsg" \
	--log "$tmp/splat.log"
json_says "$tmp/splat.json" "FAIL" "splat=PASS" "injected test splat"
# A test that its guest timeout cannot end (the command stops busybox
# timeout's watcher, a process named timeout, reparented to init): 5 s
# before the limit the guest prints KVMRS-TEST-STUCK, 60 s after it
# scripts/hang-probe.sh records every CPU's registers from the QEMU monitor
# and stops the VM, so the run ends as TIMEOUT well before the VM's wall
# limit.
stuck='for p in /proc/[0-9]*; do [ "$(cat $p/comm 2>/dev/null)" = timeout ] && kill -STOP ${p#/proc/}; done; sleep 600'
expect_red "a stuck test: the hang probe records the CPUs and stops the VM" "a test ran 10s + 60s" \
	--cmd "stuck=$stuck" --test-timeout 10 --timeout 400 --log "$tmp/stuck.log"
json_says "$tmp/stuck.json" "FAIL" "stuck=TIMEOUT"
if grep -q "KVMRS-TEST-STUCK stuck" "$tmp/stuck.log"; then
	echo "ok - the stuck test printed KVMRS-TEST-STUCK before its limit"; pass=$((pass + 1))
else
	echo "not ok - no KVMRS-TEST-STUCK in the guest log"; fail=$((fail + 1))
fi
if grep -q "^CPU#0 RIP=" "$tmp/stuck.cpus.txt" 2>/dev/null; then
	echo "ok - the probe recorded CPU#0's registers: $(grep -m1 '^CPU#0 RIP=' "$tmp/stuck.cpus.txt")"; pass=$((pass + 1))
else
	echo "not ok - no CPU#0 RIP in the probe's file; its first lines:"
	head -20 "$tmp/stuck.cpus.txt" 2>&1 | cat -v | sed 's/^/    /'; fail=$((fail + 1))
fi
# The Intel machine (Bochs) applies the same rules: one boot with a failing
# test and a kernel report.
expect_red "Intel (Bochs): a failing test fails the run" "flip .*FAIL" \
	--machine intel --suite "$tmp/flip.list" --tests flip \
	--cmd "splat=echo 'WARNING: CPU: 0 PID: 1 at kvm-rs injected test splat' > /dev/kmsg" \
	--log "$tmp/intel.log"
if grep -q "kernel splat in the guest log" "$tmp/out"; then
	echo "ok - Intel (Bochs): the kernel report fails it too"; pass=$((pass + 1))
else
	echo "not ok - Intel (Bochs): the kernel report was not seen"; fail=$((fail + 1))
fi
json_says "$tmp/intel.json" "FAIL" "splat=PASS" "injected test splat"
echo "vm-runner: $pass passed, $fail failed"
[ $fail = 0 ]
