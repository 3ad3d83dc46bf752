#!/usr/bin/env bash
# Properties of the built modules: vermagic of KDIR, Rust symbols linked
# into kvm.ko, and (for the LLVM reference tree) the kernel crate's RCU and
# atomic helpers inlined into the Rust fast path.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
cd "$KVMRS_ROOT"

kdir=${1:-$(scripts/kernel.sh --print-dir)}
release=$(cat "$kdir/include/config/kernel.release")
ko=build/$release/arch/x86/kvm/kvm.ko
pass=0 fail=0
t() { if eval "$2"; then echo "ok - $1"; pass=$((pass + 1)); else echo "not ok - $1"; fail=$((fail + 1)); fi; }

vermagic=$(modinfo -F vermagic "$ko")
echo "kvm.ko vermagic: $vermagic"
t "vermagic is KDIR's release ($release)" '[ "${vermagic%% *}" = "$release" ]'
syms=$(nm "$ko")
for s in kvm_rs_tdp_fast_page_fault kvm_rs_tdp_get_walk kvm_rs_init; do
	t "kvm.ko defines $s (Rust)" 'printf "%s\n" "$syms" | grep -q " T $s\$"'
done
t "kvm.ko defines kvm_rs_trace_fast_page_fault (C)" 'printf "%s\n" "$syms" | grep -q " T kvm_rs_trace_fast_page_fault$"'
t "kvm.ko has the tdp_fast_pf parameter" 'modinfo -F parm "$ko" | grep -q "^tdp_fast_pf:"'
for m in kvm-amd kvm-intel; do
	t "$m.ko built for $release" '[ "$(modinfo -F vermagic build/$release/arch/x86/kvm/$m.ko | cut -d" " -f1)" = "$release" ]'
done
dis=$(objdump -d --no-show-raw-insn "$ko" | awk '/<kvm_rs_tdp_fast_page_fault>:/,/^$/')
t "the Rust fast path contains a lock cmpxchg" 'printf "%s\n" "$dis" | grep -q "lock cmpxchg"'
if grep -qx 'CONFIG_RUST_INLINE_HELPERS=y' "$kdir/.config"; then
	t "no out-of-line rust_helper_* call in the Rust fast path (RUST_INLINE_HELPERS)" \
		'! objdump -dr "$ko" | awk "/<kvm_rs_tdp_fast_page_fault>:/,/^\$/" | grep -q rust_helper_'
fi
echo "modules: $pass passed, $fail failed"
[ $fail = 0 ]
