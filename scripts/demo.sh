#!/usr/bin/env bash
# `make demo`: the main job on the embedded default, from nothing.
#
# Installs the tools, builds (or reuses) the reference Rust-enabled Linux 7.3,
# builds kvm.ko with the Rust fast path, boots the kernel under QEMU (TCG,
# emulated AMD SVM + NPT), loads our modules with `make load` inside the
# guest, and runs the seed's benchmark, dirty_log_perf_test, under
# `perf record -e kvmmmu:fast_page_fault`. Prints the events perf recorded,
# how many were fixed, and which implementation fixed them.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$KVMRS_ROOT"

step "demo 1/5: setup";            scripts/setup.sh
step "demo 2/5: reference kernel"; scripts/kernel.sh
kdir=$(scripts/kernel.sh --print-dir)
step "demo 3/5: modules";          scripts/build.sh --kdir "$kdir"
step "demo 4/5: KVM selftests";    scripts/selftests.sh
step "demo 5/5: dirty_log_perf_test under perf in a VM"
mkdir -p build/logs
log=build/logs/demo-guest.log
out=build/logs/demo.out
scripts/vm.sh --quiet --kvm-params "tdp_mmu=Y tdp_fast_pf=rust" --log "$log" \
	--cmd "demo=kvmrs-params; kvmrs-stats; kvmrs-perf-count dirty_log_perf_test -v 1 -b 64M -i 3 && kvmrs-stats" \
	| tee "$out"
# The guest printed KVMRS-PERF (perf's count) and KVMRS-STATS (kvm_rs
# counters before and after): turn them into the answer.
perf_line=$(grep -a -m1 'KVMRS-PERF ' "$log" || true)
mapfile -t stats < <(grep -a 'KVMRS-STATS ' "$log" | sed 's/.*KVMRS-STATS //')
[ -n "$perf_line" ] && [ ${#stats[@]} -ge 2 ] || die "demo: the guest did not report perf or kvm_rs counters (guest log: $log)"
val() { printf '%s\n' "$1" | tr ' ' '\n' | awk -v k="$2" '$0 == k { getline; print; exit }'; }
kv() { printf '%s\n' "$1" | sed 's/.*KVMRS-PERF //' | tr ' ' '\n' | awk -F= -v k="$2" '$1 == k { print $2 }'; }
echo
echo "dirty_log_perf_test -v 1 -b 64M -i 3, tdp_mmu=Y, kvm.tdp_fast_pf=rust"
printf '  %-44s %s\n' "kvmmmu:fast_page_fault events (perf):" "$(kv "$perf_line" events)"
printf '  %-44s %s\n' "  of which fixed / spurious / other:" "$(kv "$perf_line" fixed) / $(kv "$perf_line" spurious) / $(kv "$perf_line" other)"
for impl in rust c off; do
	for r in fixed spurious invalid; do
		d=$(( $(val "${stats[1]}" "${impl}_$r") - $(val "${stats[0]}" "${impl}_$r") ))
		[ "$d" = 0 ] || printf '  %-44s %s\n' "faults $r by the $impl implementation:" "$d"
	done
done
echo "  guest log: $log"
