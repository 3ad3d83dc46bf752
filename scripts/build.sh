#!/usr/bin/env bash
# Build kvm.ko, kvm-amd.ko and kvm-intel.ko out of tree against KDIR.
#
#   scripts/build.sh --kdir <kernel build tree> [--clippy] [--llvm <prefix|1>]
#                    [--production] [--out <dir>]
#
# KVM's C is copied from KDIR's source tree into <out> (default
# build/<kernel release>), the series of patches/<major.minor>/series is
# applied to the copy (its patches, and the rust/ and include/ files each
# adds, at their in-tree places), and Kbuild builds it with `make M=<out>`.
# Only changed files are rewritten, so a rebuild is incremental.
#
# The default is the test build: CONFIG_KVM_RUST_FAST_PF and
# CONFIG_KVM_RUST_FAST_PF_DIFF (the differential check, and the counters of
# the C and off paths). --production builds CONFIG_KVM_RUST_FAST_PF alone,
# what a distribution would ship, into build/<kernel release>-production
# (what `make bench` measures); it never moves build/current.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

kdir="" clippy=0 llvm="" out="" production=0
while [ $# -gt 0 ]; do
	case "$1" in
	--kdir) kdir=$2; shift 2 ;;
	--clippy) clippy=1; shift ;;
	--llvm) llvm=$2; shift 2 ;;
	--out) out=$2; shift 2 ;;
	--production) production=1; shift ;;
	*) die "build: unknown argument '$1'" ;;
	esac
done

# --- KDIR validation: one line naming what is missing -------------------
[ -n "$kdir" ] || die "build: no KDIR given"
if [ "$kdir" = "$(scripts/kernel.sh --print-dir 2>/dev/null)" ] && [ ! -f "$kdir/.kvmrs-built" ]; then
	die "build: the reference tree $kdir is not built yet: run 'make kernel' (or 'make KDIR=<your tree>')"
fi
[ -d "$kdir" ] || die "build: KDIR $kdir does not exist"
kdir=$(cd "$kdir" && pwd)
[ -f "$kdir/.config" ] && [ -f "$kdir/Makefile" ] \
	|| die "build: KDIR $kdir is not a configured kernel build tree (no .config or Makefile)"
[ -f "$kdir/include/config/kernel.release" ] \
	|| die "build: KDIR $kdir has not been built (no include/config/kernel.release): run make there first"
release=$(cat "$kdir/include/config/kernel.release")
kver=$(release_series "$release")
[ -d "$KVMRS_ROOT/patches/$kver" ] \
	|| die "build: kernel $release is not supported (no patches/$kver/; supported: $SUPPORTED_KVERS)"
grep -qx 'CONFIG_RUST=y' "$kdir/.config" \
	|| die "build: KDIR $kdir is built without Rust support (CONFIG_RUST is not set)"
grep -qx 'CONFIG_KVM=m' "$kdir/.config" \
	|| die "build: KDIR $kdir needs CONFIG_KVM=m (kvm must be a module to be replaced)"
[ -f "$kdir/rust/libkernel.rmeta" ] \
	|| die "build: KDIR $kdir has no Rust metadata (rust/libkernel.rmeta; a distribution's headers package has none): build the tree's Rust crates (make there)"
src=$kdir
[ -e "$kdir/source" ] && src=$(cd "$kdir/source" && pwd)
[ -d "$src/arch/x86/kvm" ] && [ -d "$src/virt/kvm" ] \
	|| die "build: the source tree $src of KDIR has no arch/x86/kvm or virt/kvm"

# The Rust compiler must be the one the tree was built with.
want_rustc=$(sed -n 's/^CONFIG_RUSTC_VERSION=//p' "$kdir/.config")
rustc=${RUSTC:-$RUSTC_KERNEL}
command -v "$rustc" >/dev/null || die "build: rustc '$rustc' not found: run 'make setup' or pass RUSTC="
have=$("$rustc" --version | awk '{print $2}' | awk -F. '{printf "%d", $1 * 100000 + $2 * 100 + $3}')
[ "$have" = "$want_rustc" ] \
	|| die "build: $rustc is version $have but KDIR was built with rustc $want_rustc: pass RUSTC=<matching rustc>"
bindgen=${BINDGEN:-$CARGO_BIN/bindgen}
command -v "$bindgen" >/dev/null || die "build: bindgen not found ($bindgen): run 'make setup' or pass BINDGEN="

kmake=(make -C "$kdir" RUSTC="$rustc" BINDGEN="$bindgen")
[ -d "$RUST_LIB_SRC" ] && kmake+=(RUST_LIB_SRC="$RUST_LIB_SRC")
if grep -qx 'CONFIG_CC_IS_CLANG=y' "$kdir/.config"; then
	if [ -z "$llvm" ]; then
		if [ -x "${LLVM_PREFIX}clang" ]; then llvm=$LLVM_PREFIX; else llvm=1; fi
	fi
	kmake+=(LLVM="$llvm")
fi
if [ "$clippy" = 1 ]; then
	cd_=${CLIPPY_DRIVER:-/usr/bin/clippy-driver}
	[ -x "$cd_" ] || die "build: clippy-driver $cd_ missing: run 'make setup' (rust-web-clippy)"
	kmake+=(CLIPPY=1 CLIPPY_DRIVER="$cd_")
fi

# --- assemble the module tree --------------------------------------------
[ -n "$out" ] && out=$(mkdir -p "$out" && cd "$out" && pwd)
suffix=""
[ "$production" = 1 ] && suffix=-production
out=${out:-$KVMRS_ROOT/build/$release$suffix}
stage=$out.stage
rm -rf "$stage"; mkdir -p "$stage/arch/x86" "$stage/virt"
cp -a "$src/arch/x86/kvm" "$stage/arch/x86/kvm"
cp -a "$src/virt/kvm" "$stage/virt/kvm"
mkdir -p "$stage/$(dirname "$OOT_HEADER")"
cp -a "$src/$OOT_HEADER" "$stage/$OOT_HEADER"
# patches/<kver>/series: the patches in order, each with the repository
# files it adds (repo-path:tree-path). Only the arch/x86/kvm and virt/kvm
# part (and $OOT_HEADER, see scripts/lib.sh) is built here; the selftest
# patches are for `make series`.
series_file=$KVMRS_ROOT/patches/$kver/series
[ -f "$series_file" ] || die "build: $series_file missing"
while read -r name files; do
	case "$name" in ''|'#'*) continue ;; esac
	p=$KVMRS_ROOT/patches/$kver/$name
	[ -f "$p" ] || die "build: $series_file names $name, which does not exist"
	if grep -qE "^\+\+\+ b/(arch/x86/kvm/|virt/kvm/|$OOT_HEADER)" "$p"; then
		patch -s -p1 -d "$stage" --no-backup-if-mismatch < "$p" > "$stage.patchlog" 2>&1 \
			|| { cat "$stage.patchlog" >&2; die "build: patch $name does not apply to $src"; }
	fi
	for m in $files; do
		from=${m%%:*} to=${m#*:}
		case "$to" in arch/x86/kvm/*|virt/kvm/*) ;; *) continue ;; esac
		[ -f "$KVMRS_ROOT/$from" ] || die "build: $series_file: $from does not exist"
		cp "$KVMRS_ROOT/$from" "$stage/$to"
	done
done < "$series_file"
rm -f "$stage.patchlog"
# Build plumbing for an M= build (not a change to KVM, so not a patch).
opts=()
[ "$production" = 1 ] && opts=(KVM_RUST_FAST_PF)
oot_kvm_makefile "$stage/arch/x86/kvm/Makefile" "${opts[@]}" \
	|| die "build: could not adapt $src/arch/x86/kvm/Makefile for an out-of-tree build"
cp "$KVMRS_ROOT/Kbuild" "$stage/Kbuild"
mkdir -p "$out"
# Checksum compare: unchanged files keep their mtime, so Kbuild rebuilds
# only what changed.
rsync -rlc "$stage/" "$out/"
rm -rf "$stage"

step "build: ${suffix:+production }modules for $release in ${out#"$KVMRS_ROOT"/} (KDIR=$kdir$([ "$clippy" = 1 ] && echo ', clippy'))"
"${kmake[@]}" M="$out" modules || die "build: make -C $kdir M=$out modules failed (see above)"
for m in kvm kvm-amd kvm-intel; do
	[ -f "$out/arch/x86/kvm/$m.ko" ] || die "build: $m.ko was not produced"
done
# build/current: the default output of the last default build (what
# `make load`, the VM runner and the demo pick up).
[ "$out" = "$KVMRS_ROOT/build/$release" ] && ln -sfn "$release" "$KVMRS_ROOT/build/current"
ok "build: $out/arch/x86/kvm/{kvm,kvm-amd,kvm-intel}.ko"
