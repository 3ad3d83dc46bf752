#!/usr/bin/env bash
# Fuzz the host-side Rust logic (tests/fuzz.rs: fast_page_fault and the
# walkers over arbitrary gfns, root levels, gfn_bits, masks, permission rows
# and SPTE values that change on every read), then report the line/region
# coverage of rust/spte.rs, rust/tdp_mmu.rs and rust/fast_pf.rs achieved by
# exactly that run.
#
#   tools/host/fuzz.sh                   # 100000 cases per test (make check)
#   tools/host/fuzz.sh --cases 5000000   # cases per test
#   tools/host/fuzz.sh --seconds 600     # total wall time, split over the tests
#   tools/host/fuzz.sh --seed N          # reproduce (seed printed by each test)
#   tools/host/fuzz.sh --no-coverage     # plain release build, no report
#
# The two tests run one after the other (--test-threads=1). The coverage
# build is a release build with -C instrument-coverage in its own target
# dir (target/cov), so the normal build cache is untouched. Coverage needs
# llvm-profdata/llvm-cov of the same LLVM major version as rustc: taken from
# $LLVM_BIN, else rustup's llvm-tools component, else /usr/lib/llvm-<N>/bin;
# if none is found the report is skipped (with a message), not failed.
# CARGO_BUILD_JOBS=1 limits the build to one job.
#
# Exit status: non-zero if a fuzz test fails or the build fails.
set -uo pipefail
cd "$(dirname "$0")"
host=$PWD
root=$(cd ../.. && pwd)

cases=100000 seconds="" seed="" coverage=1
while [ $# -gt 0 ]; do
	case $1 in
	--cases) cases=$2; shift 2 ;;
	--seconds) seconds=$2; shift 2 ;;
	--seed) seed=$2; shift 2 ;;
	--no-coverage) coverage=0; shift ;;
	-h|--help) sed -n '2,/^set /p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	*) echo "fuzz.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
	esac
done

ntests=2 # tests in tests/fuzz.rs
unset KVMRS_FUZZ_CASES KVMRS_FUZZ_SECONDS KVMRS_FUZZ_SEED
if [ -n "$seconds" ]; then
	export KVMRS_FUZZ_SECONDS=$(( (seconds + ntests - 1) / ntests ))
	plan="$KVMRS_FUZZ_SECONDS s per test"
else
	export KVMRS_FUZZ_CASES=$cases
	plan="$cases cases per test"
fi
[ -n "$seed" ] && export KVMRS_FUZZ_SEED=$seed

if [ $coverage = 1 ]; then
	export CARGO_TARGET_DIR=$host/target/cov
	export RUSTFLAGS="-C instrument-coverage"
	mode="coverage-instrumented release build"
else
	mode="release build"
fi

echo "fuzz: building tests/fuzz.rs ($mode)"
bin=$(cargo test --release --test fuzz --no-run --message-format=json |
	jq -r 'select(.reason == "compiler-artifact" and .target.name == "fuzz" and .executable != null) | .executable')
if [ -z "$bin" ] || [ ! -x "$bin" ]; then
	echo "fuzz: build failed" >&2
	exit 1
fi

if [ $coverage = 1 ]; then
	prof=$CARGO_TARGET_DIR/fuzz-profiles
	rm -rf "$prof" && mkdir -p "$prof"
	export LLVM_PROFILE_FILE=$prof/fuzz-%p-%m.profraw
fi

echo "fuzz: running $plan ($bin)"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
start=$(date +%s.%N)
"$bin" --test-threads=1 --nocapture 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
elapsed=$(echo "$(date +%s.%N) - $start" | bc)
total=$(grep -oE 'fuzz: [a-z_]+: (FAILED after )?[0-9]+ executions' "$log" |
	awk '{ n += $(NF - 1) } END { print n + 0 }')
printf 'fuzz: total %s executions in %.1f s (wall, incl. test start-up)\n' "${total:-0}" "$elapsed"
if [ "$rc" != 0 ]; then
	echo "fuzz: FAILED (exit status $rc)" >&2
	exit "$rc"
fi
[ $coverage = 1 ] || exit 0

# Coverage tools of rustc's LLVM major version.
want=$(rustc -vV | sed -n 's/^LLVM version: \([0-9]*\).*/\1/p')
sysbin=$(rustc --print sysroot)/lib/rustlib/$(rustc -vV | sed -n 's/^host: //p')/bin
bindir=""
for d in ${LLVM_BIN:-} "$sysbin" "/usr/lib/llvm-$want/bin"; do
	if [ -x "$d/llvm-profdata" ] && [ -x "$d/llvm-cov" ]; then bindir=$d; break; fi
done
if [ -z "$bindir" ]; then
	echo "fuzz: coverage skipped: no llvm-profdata/llvm-cov for LLVM $want (set LLVM_BIN, or rustup component add llvm-tools)"
	exit 0
fi
have=$("$bindir/llvm-cov" --version | sed -n 's/.*LLVM version \([0-9]*\).*/\1/p')
if [ "$have" != "$want" ]; then
	echo "fuzz: warning: rustc uses LLVM $want, $bindir/llvm-cov is LLVM $have"
fi

# Only rust/spte.rs, tdp_mmu.rs, fast_pf.rs (compiled via #[path], so
# recorded as tools/host/src/../../../rust/*.rs).
re='/rust/(spte|tdp_mmu|fast_pf)\.rs$'
"$bindir/llvm-profdata" merge -sparse "$prof"/*.profraw -o "$prof/fuzz.profdata" || {
	echo "fuzz: llvm-profdata merge failed" >&2
	exit 1
}
covargs=(--instr-profile="$prof/fuzz.profdata" "$bin")
echo
echo "fuzz: coverage of rust/ by this run ($(ls "$prof"/*.profraw | wc -l) profile(s), llvm-cov $have from $bindir):"
"$bindir/llvm-cov" export --summary-only "${covargs[@]}" | jq -r --arg re "$re" '
	def pct(c; n): if n == 0 then "-" else (c * 1000 / n | round) as $t | "\(c)/\(n) \($t / 10 | floor).\($t % 10)%" end;
	def row(name; s): [name, pct(s.lines.covered; s.lines.count),
		pct(s.regions.covered; s.regions.count), pct(s.functions.covered; s.functions.count)] | @tsv;
	[.data[0].files[] | select(.filename | test($re))] as $f
	| if ($f | length) != 3 then error("expected 3 rust/ files in the coverage data, found \($f | length)") else . end
	| (["file", "lines", "regions", "functions"] | @tsv),
	  ($f[] | row(.filename | sub(".*/rust/"; "rust/"); .summary)),
	  row("total"; reduce ($f[] | .summary) as $s ({};
		.lines.covered += $s.lines.covered | .lines.count += $s.lines.count
		| .regions.covered += $s.regions.covered | .regions.count += $s.regions.count
		| .functions.covered += $s.functions.covered | .functions.count += $s.functions.count))' |
	column -t -s "$(printf '\t')" || {
	echo "fuzz: llvm-cov export failed" >&2
	exit 1
}
# Uncovered lines, as ranges, from the lcov export.
"$bindir/llvm-cov" export --format=lcov "${covargs[@]}" |
	awk -v re="$re" '
	/^SF:/ { f = substr($0, 4); keep = f ~ re; sub(/.*\/rust\//, "rust/", f); n = 0; out = ""; next }
	!keep { next }
	/^DA:/ { split(substr($0, 4), a, ",")
		if (a[2] == 0) { l = a[1] + 0
			if (n && l == last + 1) { last = l } else { flush(); first = last = l; n = 1 } }
		next }
	/^end_of_record/ { flush(); printf "uncovered lines: %s: %s\n", f, (out == "" ? "none" : out) }
	function flush() { if (!n) return; r = (first == last ? first : first "-" last)
		out = (out == "" ? r : out "," r); n = 0 }'
