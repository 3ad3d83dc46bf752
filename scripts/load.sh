#!/usr/bin/env bash
# Replace the running kernel's kvm modules with the ones built by `make`.
#
#   scripts/load.sh --kdir <tree> [--params "<kvm params>"] [--amd-params "..."] [--intel-params "..."]
#   scripts/load.sh --unload
#
# Refuses when the running kernel is not KDIR's kernel: a module built for
# another kernel would be rejected, or worse, misbehave.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

kdir="" params="" amd_params="" intel_params="" unload=0 moddir=""
while [ $# -gt 0 ]; do
	case "$1" in
	--kdir) kdir=$2; shift 2 ;;
	--params) params=$2; shift 2 ;;
	--amd-params) amd_params=$2; shift 2 ;;
	--intel-params) intel_params=$2; shift 2 ;;
	--modules) moddir=$2; shift 2 ;;
	--unload) unload=1; shift ;;
	*) die "load: unknown argument '$1'" ;;
	esac
done
[ "$(id -u)" = 0 ] || die "load: loading kernel modules needs root"

unload_kvm() {
	local m
	for m in kvm_amd kvm_intel kvm; do
		if [ -d "/sys/module/$m" ]; then
			rmmod "$m" 2>/tmp/kvmrs-rmmod.err \
				|| die "load: cannot unload $m: $(tr '\n' ' ' < /tmp/kvmrs-rmmod.err)(is a VM still running? /sys/module/$m/refcnt=$(cat /sys/module/$m/refcnt 2>/dev/null))"
		fi
	done
}

if [ "$unload" = 1 ]; then
	unload_kvm
	ok "load: kvm modules unloaded"
	exit 0
fi

running=$(uname -r)
if [ -z "$moddir" ]; then
	[ -n "$kdir" ] || die "load: no KDIR given"
	[ -f "$kdir/include/config/kernel.release" ] || die "load: KDIR $kdir is not a built kernel tree"
	release=$(cat "$kdir/include/config/kernel.release")
	[ "$running" = "$release" ] \
		|| die "load: the running kernel is $running but KDIR is $release: boot KDIR's kernel first (or use 'make check-vm', which does it in a VM)"
	moddir=$KVMRS_ROOT/build/$release/arch/x86/kvm
fi
for m in kvm kvm-amd kvm-intel; do
	[ -f "$moddir/$m.ko" ] || die "load: $moddir/$m.ko missing: run 'make' first"
done
if grep -qw svm /proc/cpuinfo; then vendor=kvm-amd; vparams=$amd_params
elif grep -qw vmx /proc/cpuinfo; then vendor=kvm-intel; vparams=$intel_params
else die "load: this CPU has neither SVM nor VMX: KVM cannot run here"; fi

# Check the parameters before unloading anything, so that a typo changes
# nothing: every name must be a parameter of the module, and the values of
# the ones kvm-rs adds must be valid.
check_params() { # <module.ko> <params>
	local ko=$1 known kv k v
	# The .modinfo strings of the module (works without modules.dep,
	# unlike busybox's modinfo): "parmtype=<name>:..." or "parm=<name>:..."
	# per parameter.  grep -o finds them in the binary without splitting
	# it into lines: 5x faster, which counts under emulation (Bochs).
	known=$(grep -a -o -E 'parm(type)?=[A-Za-z0-9_]+:' "$ko" | sed -E 's/^parm(type)?=([^:]*):.*/\2/' | sort -u)
	for kv in $2; do
		k=${kv%%=*} v=${kv#*=}
		grep -qx "$k" <<<"$known" || die "load: $(basename "$ko") has no parameter '$k' (nothing was changed)"
		case "$k=$v" in
		tdp_fast_pf=rust|tdp_fast_pf=c|tdp_fast_pf=off) ;;
		tdp_fast_pf=*) die "load: invalid tdp_fast_pf '$v': expected rust, c or off (nothing was changed)" ;;
		tdp_mmu=[YyNn01]|tdp_fast_pf_diff=[YyNn01]) ;;
		tdp_mmu=*|tdp_fast_pf_diff=*) die "load: invalid $k '$v': expected Y or N (nothing was changed)" ;;
		esac
	done
}
check_params "$moddir/kvm.ko" "$params"
check_params "$moddir/$vendor.ko" "$vparams"

unload_kvm
# kvm.ko needs irqbypass (and whatever else modules.dep of the running kernel
# says); modprobe finds them, or the insmod below fails with "Unknown symbol".
modprobe -q irqbypass 2>/dev/null || true
# shellcheck disable=SC2086 # parameters are split on purpose
if ! insmod "$moddir/kvm.ko" $params 2>/tmp/kvmrs-insmod.err; then
	dmesg | tail -3 >&2
	die "load: insmod kvm.ko $params failed: $(tr '\n' ' ' < /tmp/kvmrs-insmod.err)"
fi
# shellcheck disable=SC2086
if ! insmod "$moddir/$vendor.ko" $vparams 2>/tmp/kvmrs-insmod.err; then
	dmesg | tail -3 >&2
	rmmod kvm 2>/dev/null || true
	die "load: insmod $vendor.ko $vparams failed: $(tr '\n' ' ' < /tmp/kvmrs-insmod.err)"
fi
ok "load: kvm ($params) and $vendor ($vparams) loaded from $moddir; tdp_fast_pf=$(cat /sys/module/kvm/parameters/tdp_fast_pf 2>/dev/null || echo n/a) tdp_mmu=$(cat /sys/module/kvm/parameters/tdp_mmu)"
