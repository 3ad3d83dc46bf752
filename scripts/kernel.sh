#!/usr/bin/env bash
# Build (or reuse) the reference Rust-enabled Linux tree of series $KVER
# (7.3 by default, or 6.12: KVER=6.12).
#
#   scripts/kernel.sh [--flavor ref|gcc|debug|kcsan] [--print-dir]
#
# The source comes from Debian's linux-source-$KVER (7.3: trixie-backports,
# 6.12: bookworm-security); the
# build goes to $KVMRS_CACHE/build/<version>-<flavor>-<key>, where the key
# hashes the options the config fragments set (not their comments) and the
# toolchain versions, so a second run
# with the same inputs rebuilds nothing and a changed input gets a new tree.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

flavor=ref
print_dir=0
while [ $# -gt 0 ]; do
	case "$1" in
	--flavor) flavor=$2; shift 2 ;;
	--print-dir) print_dir=1; shift ;;
	*) die "kernel: unknown argument '$1' (usage: kernel.sh [--flavor ref|gcc|debug|kcsan] [--print-dir])" ;;
	esac
done

fragments=("$KVMRS_ROOT/config/reference.config")
case "$flavor" in
ref) llvm=1 ;;
gcc) llvm=0; fragments+=("$KVMRS_ROOT/config/gcc.config") ;;
debug) llvm=1; fragments+=("$KVMRS_ROOT/config/debug.config") ;;
kcsan) llvm=1; fragments+=("$KVMRS_ROOT/config/kcsan.config") ;;
*) die "kernel: unknown flavor '$flavor' (ref, gcc, debug or kcsan)" ;;
esac
for f in "${fragments[@]}"; do [ -f "$f" ] || die "kernel: config fragment $f missing"; done

srcdir=$KVMRS_CACHE/src/linux-source-$KVER
toolchain() {
	"$RUSTC_KERNEL" --version 2>/dev/null || echo "no-rustc"
	"$CARGO_BIN/bindgen" --version 2>/dev/null || echo "no-bindgen"
	if [ "$llvm" = 1 ]; then "${LLVM_PREFIX}clang" --version 2>/dev/null | head -1 || echo "no-clang"
	else gcc --version | head -1; fi
}
# The key covers what the options are, not how they are commented.
key=$( { grep -h -E '^CONFIG_|^# CONFIG_.* is not set' "${fragments[@]}"; toolchain; echo "flavor=$flavor"; } | sha256sum | cut -c1-12)
debver_file=$KVMRS_CACHE/src/linux-source-$KVER.version
builddir=$KVMRS_CACHE/build/$KVER-$flavor-$key

if [ "$print_dir" = 1 ]; then echo "$builddir"; exit 0; fi

if [ -f "$builddir/.kvmrs-built" ]; then
	ok "kernel: reusing $builddir ($(cat "$builddir/.kvmrs-built"))"
	exit 0
fi

[ -x "$RUSTC_KERNEL" ] || die "kernel: $RUSTC_KERNEL missing: run 'make setup' first"
[ -x "$CARGO_BIN/bindgen" ] || die "kernel: bindgen missing: run 'make setup' first"
mkdir -p "$KVMRS_CACHE/src" "$KVMRS_CACHE/build"

if [ ! -f "$srcdir/Makefile" ]; then
	step "kernel: downloading linux-source-$KVER (Debian $(kver_suite "$KVER"))"
	tmp=$(mktemp -d)
	chmod 755 "$tmp"  # so that apt's _apt user can write the download
	( cd "$tmp" && apt-get download -q "linux-source-$KVER" ) \
		|| die "kernel: apt-get download linux-source-$KVER failed (is $(kver_suite "$KVER") in the apt sources? run 'make setup')"
	deb=$(ls "$tmp"/linux-source-"$KVER"_*.deb)
	dpkg-deb -f "$deb" Version > "$debver_file"
	step "kernel: extracting $(basename "$deb")"
	dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$tmp" ./usr/src/linux-source-$KVER.tar.xz
	rm -rf "$srcdir.tmp"; mkdir -p "$srcdir.tmp"
	tar -xJf "$tmp/usr/src/linux-source-$KVER.tar.xz" -C "$srcdir.tmp" --strip-components=1
	rm -rf "$srcdir"; mv "$srcdir.tmp" "$srcdir"; rm -rf "$tmp"
fi

kmake=(make -C "$srcdir" O="$builddir" RUSTC="$RUSTC_KERNEL" RUST_LIB_SRC="$RUST_LIB_SRC"
	BINDGEN="$CARGO_BIN/bindgen")
[ "$llvm" = 1 ] && kmake+=(LLVM="$LLVM_PREFIX")

step "kernel: configuring $builddir (tinyconfig + ${fragments[*]##*/})"
mkdir -p "$builddir"
"${kmake[@]}" -s rustavailable >/dev/null || die "kernel: 'make rustavailable' says the Rust toolchain is not usable"
"${kmake[@]}" -s tinyconfig >/dev/null || die "kernel: make tinyconfig failed"
( cd "$builddir" && "$srcdir/scripts/kconfig/merge_config.sh" -m -O "$builddir" .config "${fragments[@]}" >/dev/null ) \
	|| die "kernel: merge_config.sh failed"
"${kmake[@]}" -s olddefconfig >/dev/null || die "kernel: make olddefconfig failed"
# Every fragment option must survive olddefconfig; a dropped one means a
# missing dependency and a reference tree that is not what we claim.
declare -A want=()
while IFS= read -r line; do
	case "$line" in
	CONFIG_*=*) want[${line%%=*}]=$line ;;
	"# CONFIG_"*" is not set") opt=${line#\# }; want[${opt%% *}]="" ;;
	esac
done < <(cat "${fragments[@]}")
# Options of the fragments that an older series does not have at all
# (6.12: RUST_INLINE_HELPERS came in 6.14); each is checked to be absent
# from the source's Kconfig files, not just tolerated.
absent=""
case "$KVER" in
6.12) absent="CONFIG_RUST_INLINE_HELPERS" ;;
esac
for opt in $absent; do
	! grep -rqx --include='Kconfig*' "config ${opt#CONFIG_}" "$srcdir" \
		|| die "kernel: $opt is listed as absent from $KVER but $srcdir has it"
	unset "want[$opt]"
done
lost=""
for opt in "${!want[@]}"; do
	[ -z "${want[$opt]}" ] || grep -qx "${want[$opt]}" "$builddir/.config" || lost="$lost $opt"
done
[ -z "$lost" ] || die "kernel: options dropped by olddefconfig (missing dependencies):$lost"

case "$KVER" in
7.3) took="567-857 s in 'CI=true bash .ci/run' with an empty cache on the 2-core build machine" ;;
*) took="how long: the kernel-$KVER line of a make check run" ;;
esac
step "kernel: building bzImage, Rust crates and modules with -j$(nproc) ($took: Documentation/kvm-rs/testing.rst, \"How long it takes\")"
start=$(date +%s)
"${kmake[@]}" -j"$(nproc)" all > "$builddir/build.log" 2>&1 \
	|| { tail -30 "$builddir/build.log" >&2; die "kernel: build failed, log: $builddir/build.log"; }
[ -f "$builddir/rust/kernel.o" ] || [ -n "$(ls "$builddir"/rust/libkernel.rmeta 2>/dev/null)" ] \
	|| die "kernel: no Rust metadata in $builddir/rust after the build"
echo "linux-source-$KVER $(cat "$debver_file") flavor=$flavor built in $(( $(date +%s) - start ))s" > "$builddir/.kvmrs-built"
ok "kernel: built $builddir in $(( $(date +%s) - start ))s"
# Trees of this flavor built from older inputs are stale: drop them.
for old in "$KVMRS_CACHE/build/$KVER-$flavor-"*; do
	[ "$old" = "$builddir" ] || [ ! -d "$old" ] || { step "kernel: removing stale $old"; rm -rf "$old"; }
done
