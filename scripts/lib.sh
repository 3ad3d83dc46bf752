# Shared settings and helpers for kvm-rs scripts. Sourced, not run.
# shellcheck shell=bash

KVMRS_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
KVMRS_CACHE=${KVMRS_CACHE:-/var/cache/kvm-rs}
CARGO_HOME_DIR=${CARGO_HOME:-$HOME/.cargo}
CARGO_BIN=$CARGO_HOME_DIR/bin
RUSTC_KERNEL=/usr/bin/rustc
RUST_LIB_SRC=/usr/src/rustc-1.96.0/library
LIBCLANG_PATH=/usr/lib/llvm-22/lib
LLVM_PREFIX=/usr/lib/llvm-22/bin/
# The kernel series to build against (KVER= on the make command line):
# each has its Debian source package and its patches/<series>/.
KVER=${KVER:-7.3}
SUPPORTED_KVERS="7.3 6.12"
export LIBCLANG_PATH

step() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
ok() { printf '\033[32m==> %s\033[0m\n' "$*" >&2; }
die() { printf '\033[31mERROR: %s\033[0m\n' "$*" >&2; exit 1; }

# supported_kver <series>: true if it is one of SUPPORTED_KVERS.
supported_kver() { case " $SUPPORTED_KVERS " in *" $1 "*) return 0 ;; esac; return 1; }
# release_series <kernel release>: its series, e.g. 6.12.118 -> 6.12.
release_series() { echo "$1" | sed -E 's/^([0-9]+\.[0-9]+).*/\1/'; }
supported_kver "$KVER" || die "KVER=$KVER is not a supported kernel series (supported: $SUPPORTED_KVERS)"
# Where Debian ships the series' source package (scripts/setup.sh adds
# trixie-backports; bookworm-security is on every Debian 12 image).
kver_suite() {
	case "$1" in
	7.3) echo trixie-backports ;;
	6.12) echo bookworm-security ;;
	esac
}

# oot_kvm_makefile MAKEFILE [OPTION...]: adapt a copy of arch/x86/kvm/Makefile
# (with the series applied) for an M= build: absolute include paths,
# virt/kvm from the copy, and the kvm-rs Kconfig options, which KDIR's
# .config does not have, set for Make, C and rustc. Default options: both,
# KVM_RUST_FAST_PF and KVM_RUST_FAST_PF_DIFF (the differential check is
# built in: these are test builds); "-" for none. Also used by
# scripts/series.sh to compare the two forms.
# The one header outside arch/x86/kvm and virt/kvm that the series changes
# (the vCPU stats): the out-of-tree build puts its patched copy first on the
# include path (NOSTDINC_FLAGS comes before the tree's -I flags), so that
# kvm.ko, kvm-amd.ko and kvm-intel.ko are all compiled against it.
OOT_HEADER=arch/x86/include/asm/kvm_host.h

oot_kvm_makefile() {
	local mk=$1 o mkopts="" ccopts="" rsopts=""
	shift
	local opts=("$@")
	[ ${#opts[@]} = 0 ] && opts=(KVM_RUST_FAST_PF KVM_RUST_FAST_PF_DIFF)
	sed -i -e 's|-I \$(srctree)/arch/x86/kvm|-I $(KBUILD_EXTMOD)/arch/x86/kvm|' \
		-e 's|include \$(srctree)/virt/kvm/Makefile.kvm|include $(KBUILD_EXTMOD)/virt/kvm/Makefile.kvm|' \
		-e 's|\$(srctree)/\$(src)/|$(KBUILD_EXTMOD)/arch/x86/kvm/|g' "$mk"
	grep -q 'KBUILD_EXTMOD)/virt/kvm/Makefile.kvm' "$mk" || return 1
	for o in "${opts[@]}"; do
		[ "$o" = - ] && continue
		mkopts="$mkopts\\
CONFIG_$o := y"
		ccopts="$ccopts -DCONFIG_$o=1"
		rsopts="$rsopts --cfg CONFIG_$o"
	done
	sed -i "1a\\
\\
# kvm-rs out-of-tree build (scripts/lib.sh): the options of the series.$mkopts\\
NOSTDINC_FLAGS := -I\$(KBUILD_EXTMOD)/arch/x86/include \$(NOSTDINC_FLAGS)\\
ccflags-y +=$ccopts\\
rustflags-y +=$rsopts -Dwarnings" "$mk"
}
