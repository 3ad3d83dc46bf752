#!/usr/bin/env bash
# `make check-debug`: the VM suite on the debug reference kernel (KASAN,
# lockdep with PROVE_LOCKING/PROVE_RCU, DEBUG_ATOMIC_SLEEP, DEBUG_VM, RCU
# stall detection, Rust debug assertions; config/debug.config), with our
# modules built against it: tdp_mmu=Y with the Rust path (differential mode
# on) and the C path, and tdp_mmu=N. scripts/vm.sh fails on any test failure
# and on any kernel report in the guest log.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
cd "$KVMRS_ROOT"

scripts/setup.sh || exit 1
scripts/kernel.sh --flavor debug || exit 1
kdir=$(scripts/kernel.sh --flavor debug --print-dir)
release=$(cat "$kdir/include/config/kernel.release")
out=$KVMRS_ROOT/build/$release-debug
scripts/build.sh --kdir "$kdir" --out "$out" || exit 1
scripts/selftests.sh || exit 1
step "check-debug: debug options: $(grep -E '^CONFIG_(KASAN|PROVE_LOCKING|PROVE_RCU|DEBUG_ATOMIC_SLEEP|DEBUG_VM|RCU_CPU_STALL_TIMEOUT|RUST_DEBUG_ASSERTIONS)=' "$kdir/.config" | tr '\n' ' ')"

logdir=$KVMRS_ROOT/build/logs
mkdir -p "$logdir"
rc=0
for cfg in "tdp_mmu=Y tdp_fast_pf=rust tdp_fast_pf_diff=Y" "tdp_mmu=Y tdp_fast_pf=c" "tdp_mmu=N"; do
	name=$(echo "$cfg" | tr ' =' '_-')
	step "check-debug: $cfg"
	scripts/vm.sh --quiet --kdir "$kdir" --modules "$out/arch/x86/kvm" --kvm-params "$cfg" \
		--tests "$KVMRS_ROOT/tools/vm/debug.list" --timeout 2400 --test-timeout 900 \
		--log "$logdir/debug-$name.log" || rc=1
	grep -a 'KVMRS-STATS' "$logdir/debug-$name.log" | tail -1
done
[ $rc = 0 ] && ok "check-debug: passed" || die "check-debug: failed (logs: $logdir/debug-*.log)"
