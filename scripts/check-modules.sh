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
	t "kvm.ko defines $s (Rust)" 'grep -q " T $s\$" <<<"$syms"'
done
t "kvm.ko defines kvm_rs_trace_fast_page_fault (C)" 'grep -q " T kvm_rs_trace_fast_page_fault$" <<<"$syms"'
parms=$(modinfo -F parm "$ko")
t "kvm.ko has the tdp_fast_pf parameter" 'grep -q "^tdp_fast_pf:" <<<"$parms"'
for m in kvm-amd kvm-intel; do
	t "$m.ko built for $release" '[ "$(modinfo -F vermagic build/$release/arch/x86/kvm/$m.ko | cut -d" " -f1)" = "$release" ]'
done
dis=$(objdump -d --no-show-raw-insn "$ko" | awk '/<kvm_rs_tdp_fast_page_fault>:/,/^$/')
t "the Rust fast path contains a lock cmpxchg" 'grep -q "lock cmpxchg" <<<"$dis"'
if grep -qx 'CONFIG_RUST_INLINE_HELPERS=y' "$kdir/.config"; then
	relocs=$(objdump -dr "$ko" | awk '/<kvm_rs_tdp_fast_page_fault>:/,/^$/')
	t "no out-of-line rust_helper_* call in the Rust fast path (RUST_INLINE_HELPERS)" \
		'[ -n "$relocs" ] && ! grep -q rust_helper_ <<<"$relocs"'
fi
echo "modules: $pass passed, $fail failed"
[ $fail = 0 ]
