#!/usr/bin/env bash
# The in-tree form, built and booted: the series as make series applies it
# to the pristine files (build/series.work, one commit per patch), in a copy
# of the pristine 7.3 source, built in-tree, with the reference config plus
# CONFIG_KVM_RUST_FAST_PF, CONFIG_KVM_RUST_FAST_PF_DIFF (and what it depends
# on: DEBUG_KERNEL, KVM_PROVE_MMU) and KVM_WERROR.
#
#   scripts/intree.sh build        build the in-tree kernel and modules
#                                  (incrementally after the first time)
#   scripts/intree.sh off          build the series' arch/x86/kvm with both
#                                  options off, against the reference tree
#                                  (M=, into build/intree-off/)
#   scripts/intree.sh bisect       build arch/x86/kvm after every patch of
#                                  the series, with the options on and off
#                                  (M= builds against the reference tree,
#                                  -Werror as KVM_WERROR=y; 9 builds, each
#                                  setting incremental from patch to patch)
#   scripts/intree.sh --print-dir  the in-tree build directory
#
# Both the source and the build directory are copies kept in
# $KVMRS_CACHE/intree/<reference tree>/: the source hard-links the pristine
# files and replaces only those the series changes, the build directory
# starts as a copy of the reference build. The build runs in a private mount
# namespace where the two copies are bind-mounted over the reference paths:
# the reference build recorded absolute source paths, so at the same paths
# only what the series and the new options change is rebuilt.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

src=$KVMRS_CACHE/src/linux-source-$KVER
ref=$(scripts/kernel.sh --print-dir)
base=$KVMRS_CACHE/intree/$(basename "$ref")
isrc=$base/src
ibuild=$base/build

what=${1:-}
case "$what" in
--print-dir) echo "$ibuild"; exit 0 ;;
build|off|bisect) ;;
*) die "intree: usage: scripts/intree.sh build|off|bisect|--print-dir" ;;
esac

[ -f "$ref/.kvmrs-built" ] || die "intree: the reference tree $ref is not built: run 'make kernel' first"
command -v unshare >/dev/null || die "intree: unshare missing (Debian package util-linux)"

scripts/series.sh >/dev/null

# build/series.work (scripts/series.sh): a git repository of the pristine
# files with one commit per patch of the series, on top of "base".
work=$KVMRS_ROOT/build/series.work
mapfile -t commits < <(git -C "$work" rev-list --reverse base..HEAD)
[ ${#commits[@]} -gt 0 ] || die "intree: no commits in $work"

# mbuild KDIR OUT COMMIT OPTIONS...: an M= build of arch/x86/kvm and
# virt/kvm as they are at COMMIT of build/series.work, with the given
# kvm-rs options ("-" for none) and -Werror, into OUT.
mbuild() {
	local kdir=$1 o=$2 c=$3 t
	shift 3
	t=$(mktemp -d)
	git -C "$work" archive "$c" arch/x86/kvm virt/kvm "$OOT_HEADER" | tar -x -C "$t"
	oot_kvm_makefile "$t/arch/x86/kvm/Makefile" "$@" || die "intree: cannot adapt the Makefile"
	sed -i '1a ccflags-y += -Werror' "$t/arch/x86/kvm/Makefile"
	cp "$KVMRS_ROOT/Kbuild" "$t/Kbuild"
	# Only changed files get a new time stamp: the next build of $o is
	# incremental. (The series only adds files, so none is left over from
	# an earlier commit.)
	mkdir -p "$o"
	rsync -rlc "$t/" "$o/"
	rm -rf "$t"
	make -C "$kdir" M="$o" RUSTC="$RUSTC_KERNEL" RUST_LIB_SRC="$RUST_LIB_SRC" \
		BINDGEN="$CARGO_BIN/bindgen" LLVM="$LLVM_PREFIX" -j"$(nproc)" modules > "$o.log" 2>&1
}

if [ "$what" = bisect ]; then
	rc=0
	for c in "${commits[@]}"; do
		git -C "$work" diff --quiet "$c^" "$c" -- arch/x86/kvm virt/kvm "$OOT_HEADER" && continue
		name=$(git -C "$work" log -1 --format=%s "$c")
		for opt in on off; do
			# one directory per setting, built incrementally from patch to patch
			o=$KVMRS_ROOT/build/bisect/$opt
			opts=(-)
			if [ $opt = on ]; then
				# the options the Kconfig at this commit has
				opts=()
				kconfig=$(git -C "$work" show "$c:arch/x86/kvm/Kconfig")
				for k in KVM_RUST_FAST_PF KVM_RUST_FAST_PF_DIFF; do
					if grep -qx "config $k" <<< "$kconfig"; then opts+=("$k"); fi
				done
				if [ ${#opts[@]} = 0 ]; then
					echo "ok - after '$name': no kvm-rs option exists yet (the off build below covers it)"
					continue
				fi
			fi
			start=$(date +%s)
			if mbuild "$ref" "$o" "$c" "${opts[@]}"; then
				echo "ok - after '$name', options ${opts[*]/#-/none}: builds ($(( $(date +%s) - start ))s)"
			else
				tail -20 "$o.log" | sed 's/^/    /'
				echo "not ok - after '$name', options ${opts[*]/#-/none}: build failed (log: $o.log)"; rc=1
			fi
		done
	done
	exit $rc
fi

step "intree: source copy $isrc (the pristine tree hard-linked, the series applied)"
if [ ! -f "$isrc/Makefile" ]; then
	rm -rf "$isrc.tmp"; mkdir -p "$base"
	cp -al "$src" "$isrc.tmp"
	mv "$isrc.tmp" "$isrc"
fi
# Copy the series' files (build/series.work at its last commit) into the
# source copy, only those whose content changed: rsync writes a new file
# and renames it, so a hard link to the pristine tree is replaced, never
# written through, and an unchanged file keeps its time stamp.
rsync -rlc --exclude=/.git "$work/" "$isrc/"

if [ ! -f "$ibuild/.config" ]; then
	step "intree: build directory $ibuild (a copy of the reference build)"
	rm -rf "$ibuild.tmp"
	cp -a "$ref" "$ibuild.tmp"
	rm -f "$ibuild.tmp/.kvmrs-built"
	mv "$ibuild.tmp" "$ibuild"
fi

kmake="make -C $src O=$ref RUSTC=$RUSTC_KERNEL RUST_LIB_SRC=$RUST_LIB_SRC BINDGEN=$CARGO_BIN/bindgen LLVM=$LLVM_PREFIX"
opts="KVM_RUST_FAST_PF DEBUG_KERNEL KVM_PROVE_MMU KVM_RUST_FAST_PF_DIFF KVM_WERROR"
step "intree: building in-tree with CONFIG_${opts// /=y CONFIG_}=y (-j$(nproc))"
start=$(date +%s)
log=$base/build.log
if ! unshare -m bash -euo pipefail -c '
	src=$1 ref=$2 isrc=$3 ibuild=$4 kmake=$5 opts=$6
	mount --bind "$isrc" "$src"
	mount --bind "$ibuild" "$ref"
	for o in $opts; do "$src/scripts/config" --file "$ref/.config" -e "$o"; done
	$kmake -s olddefconfig
	for o in $opts; do
		grep -qx "CONFIG_$o=y" "$ref/.config" || { echo "intree: CONFIG_$o=y was dropped by olddefconfig" >&2; exit 1; }
	done
	$kmake -j"$(nproc)" all
' intree "$src" "$ref" "$isrc" "$ibuild" "$kmake" "$opts" > "$log" 2>&1; then
	tail -30 "$log" >&2
	die "intree: in-tree build failed, log: $log"
fi
for m in kvm kvm-amd kvm-intel; do
	[ -f "$ibuild/arch/x86/kvm/$m.ko" ] || die "intree: $m.ko was not built (log: $log)"
done
syms=$("${LLVM_PREFIX}llvm-nm" "$ibuild/arch/x86/kvm/kvm.ko")
grep -q ' T kvm_rs_tdp_fast_page_fault$' <<< "$syms" \
	|| die "intree: kvm.ko has no kvm_rs_tdp_fast_page_fault: the Rust path was not built in"
ok "intree: built $ibuild in $(( $(date +%s) - start ))s (log: $log)"

[ "$what" = off ] || exit 0
o=$KVMRS_ROOT/build/intree-off
step "intree: the series' arch/x86/kvm with both options off, M= against the reference tree $ref"
mbuild "$ref" "$o" HEAD - || { tail -20 "$o.log" >&2; die "intree: the option-off build failed (log: $o.log)"; }
syms=$("${LLVM_PREFIX}llvm-nm" "$o/arch/x86/kvm/kvm.ko")
if grep -q kvm_rs <<< "$syms"; then
	die "intree: kvm.ko built with the options off has kvm_rs symbols"
fi
ok "intree: $o/arch/x86/kvm/kvm.ko, no kvm_rs symbol"
