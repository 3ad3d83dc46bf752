#!/usr/bin/env bash
# Build (or reuse) the static KVM selftests of the reference tree ($KVER) plus
# the project's own tests (tools/selftests/*.c), for the VM runner.
#
#   scripts/selftests.sh [--print-dir] [--force] [--src <linux source tree>]
#
# Output: a directory of static x86_64 binaries (flat: x86/foo -> foo), printed
# on stdout as the last line (--print-dir prints it without building).
#
# Cache layout ($KVMRS_CACHE/selftests/<kernel version>/):
#   hdr/         `make headers` output (O=), usr/include is KHDR_INCLUDES
#   src/         copy of the source tree's tools/ (symlinks resolved) and
#                scripts/subarch.include; our tests are copied into
#                src/tools/testing/selftests/kvm/kvmrs/
#   out/         OUTPUT= of the selftests make (objects, libkvm, binaries)
#   bin-<hash>/  the binaries; <hash> covers the target list and the
#                sources in tools/selftests, so editing a test rebuilds only
#                the tests (make is incremental in out/)
set -euo pipefail
. "$(dirname "$0")/lib.sh"

# Stock selftests we run in the VM (paths relative to the kvm selftests dir).
# 6.12 keeps the x86 tests in x86_64/ and has neither mmu_stress_test (6.13)
# nor x86/save_restore_pf_stress_test.
STOCK_TARGETS=(
	dirty_log_test dirty_log_perf_test access_tracking_perf_test
	set_memory_region_test memslot_modification_stress_test
	kvm_page_table_test demand_paging_test kvm_binary_stats_test
	pre_fault_memory_test
)
case "$KVER" in
6.12) arch_dir=x86_64 ;;
*) arch_dir=x86; STOCK_TARGETS+=(mmu_stress_test x86/save_restore_pf_stress_test) ;;
esac
STOCK_TARGETS+=("$arch_dir/dirty_log_page_splitting_test" "$arch_dir/nx_huge_pages_test")

print_dir=0
force=0
srcdir=$KVMRS_CACHE/src/linux-source-$KVER
while [ $# -gt 0 ]; do
	case "$1" in
	--print-dir) print_dir=1; shift ;;
	--force) force=1; shift ;;
	--src) srcdir=$2; shift 2 ;;
	-h|--help) sed -n '2,20p' "$0"; exit 0 ;;
	*) die "selftests: unknown argument '$1' (usage: selftests.sh [--print-dir] [--force] [--src <dir>])" ;;
	esac
done

ours_dir=$KVMRS_ROOT/tools/selftests
[ -f "$srcdir/Makefile" ] || die "selftests: no kernel source at $srcdir (run scripts/kernel.sh first)"
kver=$(make -s -C "$srcdir" kernelversion 2>/dev/null) || die "selftests: cannot get kernelversion from $srcdir"
debver=""
[ -f "$KVMRS_CACHE/src/linux-source-$KVER.version" ] && debver=$(cat "$KVMRS_CACHE/src/linux-source-$KVER.version")
[ "$srcdir" = "$KVMRS_CACHE/src/linux-source-$KVER" ] || debver="custom-$(echo "$srcdir" | sha256sum | cut -c1-8)"

# Our tests: every tools/selftests/*.c is one test binary.
our_tests=()
for f in "$ours_dir"/*.c; do
	[ -e "$f" ] || continue
	our_tests+=("$(basename "$f" .c)")
done

hash=$( { echo "${STOCK_TARGETS[*]}"; gcc --version | head -1;
	for f in "$ours_dir"/*.c "$ours_dir"/*.h "$ours_dir"/Makefile; do
		[ -e "$f" ] && { echo "== $(basename "$f")"; cat "$f"; }
	done; } | sha256sum | cut -c1-12)
base=$KVMRS_CACHE/selftests/${debver:-$kver}
bindir=$base/bin-$hash

if [ "$print_dir" = 1 ]; then echo "$bindir"; exit 0; fi

if [ "$force" = 0 ] && [ -f "$bindir/.kvmrs-built" ]; then
	touch "$bindir"	# in use: see the clean-up below
	ok "selftests: reusing $bindir ($(cat "$bindir/.kvmrs-built"))"
	echo "$bindir"
	exit 0
fi

start=$(date +%s)
mkdir -p "$base"
# Other checkouts share $base (src/, out/): one build at a time.
exec 9> "$base/.lock"
flock 9
st_src=$base/src
kvm_st=$st_src/tools/testing/selftests/kvm
out=$base/out

# 1. UAPI headers (make headers works without a .config).
if [ "$force" = 1 ] || [ ! -f "$base/hdr/.kvmrs-done" ]; then
	step "selftests: make headers (Linux $kver) -> $base/hdr"
	rm -rf "$base/hdr"
	make -s -C "$srcdir" O="$base/hdr" ARCH=x86 headers > "$base/headers.log" 2>&1 \
		|| { tail -20 "$base/headers.log" >&2; die "selftests: make headers failed, log: $base/headers.log"; }
	touch "$base/hdr/.kvmrs-done"
fi
[ -d "$base/hdr/usr/include/linux" ] || die "selftests: $base/hdr/usr/include/linux missing after make headers"

# 2. A private copy of tools/ with symlinks resolved (some in tools/include
#    point back into the source tree), so builds never write into $srcdir.
if [ "$force" = 1 ] || [ ! -f "$st_src/.kvmrs-done" ]; then
	step "selftests: copying $srcdir/tools (symlinks resolved) -> $st_src"
	rm -rf "$st_src"; mkdir -p "$st_src/scripts"
	( cd "$srcdir" && tar -ch --exclude=tools/perf --exclude='tools/testing/selftests/net' tools ) \
		| tar -x -C "$st_src" || die "selftests: copying tools/ failed"
	cp "$srcdir/scripts/subarch.include" "$st_src/scripts/"
	touch "$st_src/.kvmrs-done"
fi

# 3. Our tests, built by tools/selftests/Makefile, a wrapper around the kvm
#    selftests Makefile (it needs to run inside the kvm selftests directory).
rm -rf "$kvm_st/kvmrs"; mkdir -p "$kvm_st/kvmrs" "$out/kvmrs" "$out/$arch_dir"
if [ ${#our_tests[@]} -gt 0 ]; then
	cp "$ours_dir"/*.c "$kvm_st/kvmrs/"
	cp "$ours_dir"/*.h "$kvm_st/kvmrs/" 2>/dev/null || true
fi
[ -f "$ours_dir/Makefile" ] || die "selftests: $ours_dir/Makefile missing"
cp "$ours_dir/Makefile" "$kvm_st/Makefile.kvmrs"

targets=()
for t in "${STOCK_TARGETS[@]}"; do targets+=("$out/$t"); done
for t in "${our_tests[@]}"; do targets+=("$out/kvmrs/$t"); done

step "selftests: building ${#STOCK_TARGETS[@]} stock + ${#our_tests[@]} project tests (static) in $out"
make -C "$kvm_st" -f Makefile.kvmrs -j"$(nproc)" \
	OUTPUT="$out" KHDR_INCLUDES="-isystem $base/hdr/usr/include" \
	KVMRS_TESTS="${our_tests[*]}" \
	LDFLAGS="-static -pthread -no-pie" \
	"${targets[@]}" > "$base/build.log" 2>&1 \
	|| { grep -E 'error|Error' "$base/build.log" | head -30 >&2; tail -5 "$base/build.log" >&2;
	     die "selftests: build failed, log: $base/build.log"; }
if grep -q 'warning:' "$base/build.log"; then
	grep 'kvmrs/.*warning:' "$base/build.log" >&2 || true
fi

rm -rf "$bindir.tmp"; mkdir -p "$bindir.tmp"
for t in "${targets[@]}"; do
	[ -x "$t" ] || die "selftests: $t was not built (log: $base/build.log)"
	file -b "$t" | grep -q 'statically linked' || die "selftests: $t is not statically linked"
	cp "$t" "$bindir.tmp/$(basename "$t")"
done
# x86/nx_huge_pages_test.sh drives nx_huge_pages_test with its parameters.
cp "$kvm_st/$arch_dir/nx_huge_pages_test.sh" "$bindir.tmp/" 2>/dev/null || true
# Old sets go, but not those another checkout used in the last two hours
# (it may be packing one into an initramfs right now).
find "$base" -maxdepth 1 -type d -name 'bin-*' ! -name "$(basename "$bindir").tmp" \
	-mmin +120 -exec rm -rf {} + 2>/dev/null || true
echo "Linux $kver ${debver} $(( $(date +%s) - start ))s ${#targets[@]} tests" > "$bindir.tmp/.kvmrs-built"
mv "$bindir.tmp" "$bindir"
ok "selftests: built ${#targets[@]} tests into $bindir in $(( $(date +%s) - start ))s"
echo "$bindir"
