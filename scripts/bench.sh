#!/usr/bin/env bash
# kvm-rs benchmark (`make bench`): the fast page fault path, every arm, in one
# deterministic QEMU boot (scripts/vm.sh --icount; BENCHMARKS.md protocol).
#
#   scripts/bench.sh [options]
#
# In one boot of the reference kernel with our modules:
#   1. tdp_mmu=Y, alternating kvm.tdp_fast_pf=rust,c,off (runtime switch via
#      /sys/module/kvm/parameters/tdp_fast_pf before every run), REPS
#      repetitions of every workload row;
#   2. one traced run per arm and row under kvmrs-perf-count (perf record
#      -e kvmmmu:fast_page_fault; counted, never timed);
#   3. the modules reloaded in the guest with tdp_mmu=N (kvmrs-load), the
#      shadow MMU's C fast path: REPS timed runs per row + one traced run.
# Every arm and the reload start with an untimed warm-up run.
#
# Benchmark: tools/selftests/fast_pf_bench.c (vCPU thread CPU time per dirty
# pass = emulated instructions under -icount shift=0).  Rows:
#   v1-64M       -v 1 -b 64M -i 3                    (primary)
#   v1-64M-thp   -v 1 -b 64M -i 3 -s anonymous_thp
#   v2-32M-o     -v 2 -b 32M -i 3 -o                 (2 vCPUs over one region)
#
# Options:
#   --reps N         timed repetitions per arm and row (default 5)
#   --rows LIST      comma separated row names (default: all three)
#   --arms LIST      tdp_mmu=Y arms (default rust,c,off; "stock" = leave the
#                    parameter alone, for --modules stock)
#   --no-shadow      skip the tdp_mmu=N reload and its runs
#   --no-trace       skip the traced runs
#   --modules DIR    passed to scripts/vm.sh (default: build/current/...)
#   --kdir DIR       kernel tree to boot, passed to scripts/vm.sh (default:
#                    the reference tree); e.g. the gcc-built flavor with the
#                    modules built against it
#   --out DIR        output directory (default build/bench/<timestamp>)
#   --quick          --reps 1 --rows v1-64M (a smoke run, about 1 minute)
#
# Output: progress per run, then the table (medians [min-max], ratios), and
# the paths of results.csv, summary.csv, table.txt, chart.png and the guest
# log in the output directory.  Exit status non-zero if any run failed, a
# run ran the wrong arm, or the VM failed.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

orig_args="$*"
reps=5 rows_arg="v1-64M,v1-64M-thp,v2-32M-o" arms_arg="rust,c,off" shadow=1 trace=1
moddir="" out="" kdir=""
usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit "${1:-0}"; }
while [ $# -gt 0 ]; do
	case "$1" in
	--reps) reps=$2; shift 2 ;;
	--rows) rows_arg=$2; shift 2 ;;
	--arms) arms_arg=$2; shift 2 ;;
	--no-shadow) shadow=0; shift ;;
	--no-trace) trace=0; shift ;;
	--modules) moddir=$2; shift 2 ;;
	--kdir) kdir=$2; shift 2 ;;
	--out) out=$2; shift 2 ;;
	--quick) reps=1; rows_arg=v1-64M; shift ;;
	-h|--help) usage 0 ;;
	*) echo "bench: unknown argument '$1'" >&2; usage 1 ;;
	esac
done
[[ "$reps" =~ ^[1-9][0-9]*$ ]] || die "bench: --reps wants a positive number"

declare -A ROW_ARGS=(
	[v1-64M]="-v 1 -b 64M -i 3"
	[v1-64M-thp]="-v 1 -b 64M -i 3 -s anonymous_thp"
	[v2-32M-o]="-v 2 -b 32M -i 3 -o"
)
IFS=, read -r -a rows <<< "$rows_arg"
IFS=, read -r -a arms <<< "$arms_arg"
for r in "${rows[@]}"; do [ -n "${ROW_ARGS[$r]:-}" ] || die "bench: unknown row '$r' (rows: ${!ROW_ARGS[*]})"; done
for a in "${arms[@]}"; do case "$a" in rust|c|off|stock) ;; *) die "bench: unknown arm '$a' (rust, c, off, stock)" ;; esac; done

if [ -z "$moddir" ] && [ ! -f "$KVMRS_ROOT/build/current/arch/x86/kvm/kvm.ko" ]; then
	die "bench: $KVMRS_ROOT/build/current/arch/x86/kvm/kvm.ko not built (run 'make'), or pass --modules"
fi
[ -x /usr/bin/python3 ] || die "bench: /usr/bin/python3 missing"

stamp=$(date +%Y%m%d-%H%M%S)
[ -n "$out" ] || out=$KVMRS_ROOT/build/bench/$stamp
mkdir -p "$out"
out=$(cd "$out" && pwd)
list=$out/tests.list plan=$out/plan.tsv log=$out/guest.log
: > "$list"
printf '# name\tkind\trow\tarm\trep\targs\n' > "$plan"

BENCH=fast_pf_bench
PARAM=/sys/module/kvm/parameters/tdp_fast_pf
add() {	# <name> <kind> <row> <arm> <rep> <command>
	local name=$1 kind=$2 row=$3 arm=$4 rep=$5 cmd=$6
	echo "$name $cmd" >> "$list"
	printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$kind" "$row" "$arm" "$rep" "${ROW_ARGS[$row]:-}" >> "$plan"
}
set_arm() {	# the guest command prefix selecting an arm
	case "$1" in
	stock|shadow) echo "" ;;
	*) echo "echo $1 > $PARAM && " ;;
	esac
}

# --- the plan: warm-up, alternating timed runs, traced runs, reload, shadow ---
add warmup setup "${rows[0]}" "${arms[0]}" 0 "$(set_arm "${arms[0]}")$BENCH ${ROW_ARGS[${rows[0]}]} -q"
for rep in $(seq 1 "$reps"); do
	for row in "${rows[@]}"; do
		for arm in "${arms[@]}"; do
			add "${row}_${arm}_r$rep" timed "$row" "$arm" "$rep" "$(set_arm "$arm")$BENCH ${ROW_ARGS[$row]}"
		done
	done
done
if [ "$trace" = 1 ]; then
	for row in "${rows[@]}"; do
		for arm in "${arms[@]}"; do
			add "${row}_${arm}_perf" traced "$row" "$arm" perf \
				"$(set_arm "$arm")kvmrs-perf-count $BENCH ${ROW_ARGS[$row]} -q"
		done
	done
fi
if [ "$shadow" = 1 ]; then
	add reload_tdp_mmu_N setup - shadow 0 'kvmrs-load "tdp_mmu=N"'
	add warmup_shadow setup "${rows[0]}" shadow 0 "$BENCH ${ROW_ARGS[${rows[0]}]} -q"
	for rep in $(seq 1 "$reps"); do
		for row in "${rows[@]}"; do
			add "${row}_shadow_r$rep" timed "$row" shadow "$rep" "$BENCH ${ROW_ARGS[$row]}"
		done
	done
	if [ "$trace" = 1 ]; then
		for row in "${rows[@]}"; do
			add "${row}_shadow_perf" traced "$row" shadow perf "kvmrs-perf-count $BENCH ${ROW_ARGS[$row]} -q"
		done
	fi
fi
ntests=$(wc -l < "$list")
# about 4 s of wall time per run (5 s traced) plus boot; generous limit
vm_timeout=$(( 120 + ntests * 20 ))

step "bench: $ntests runs (${#rows[@]} rows x arms ${arms[*]}$([ "$shadow" = 1 ] && echo " + tdp_mmu=N") x $reps reps$([ "$trace" = 1 ] && echo " + traced")), one --icount boot, output $out"

# --- run: vm.sh's progress lines -> one line per finished run, with its figure ---
t0=$(date +%s)
vm_args=(--icount --quiet --tests "$list" --log "$log" --timeout "$vm_timeout")
[ -n "$moddir" ] && vm_args+=(--modules "$moddir")
[ -n "$kdir" ] && vm_args+=(--kdir "$kdir")
done_n=0
figure() {	# iteration-2 line of one test from the live log
	awk -v b="KVMRS-TEST-BEGIN $1 " -v e="KVMRS-TEST-END $1 " '
		{ sub(/\r$/, "") }
		index($0, b) { on = 1; next }
		index($0, e) { on = 0 }
		on && /KVMRS-BENCH iter=2 phase=dirty/ { for (i = 1; i <= NF; i++) if ($i ~ /^(cpu_ns|pf_fast)=/) printf "%s ", $i }
		on && /KVMRS-PERF/ { sub(/.*KVMRS-PERF /, ""); printf "%s ", $0 }
		on && /KVMRS-BENCH config/ { for (i = 1; i <= NF; i++) if ($i ~ /^tdp_(mmu|fast_pf)=/) printf "%s ", $i }' "$log" 2>/dev/null
}
set +e
"$KVMRS_ROOT/scripts/vm.sh" "${vm_args[@]}" 2>&1 | tee "$out/vm.txt" | while IFS= read -r line; do
	case "$line" in
	*"] end "*)
		set -- ${line#*] end }
		done_n=$((done_n + 1))
		printf '[%4ds] %3d/%d %-24s %s %s\n' $(( $(date +%s) - t0 )) "$done_n" "$ntests" "$1" "$2" "$(figure "$1")" ;;
	*"] booted:"*|*"] guest done"*|*PARAMS*|*FAILED*|*"vm: "*|*"==> "*|*ERROR*) echo "$line" ;;
	esac
done
vm_rc=${PIPESTATUS[0]}
set -e
wall=$(( $(date +%s) - t0 ))
echo
[ "$vm_rc" = 0 ] || echo "bench: scripts/vm.sh failed (rc=$vm_rc); its table: $out/vm.txt" >&2

# --- report ---------------------------------------------------------------------
set +e
/usr/bin/python3 "$KVMRS_ROOT/tools/bench/report.py" --log "$log" --plan "$plan" --out "$out"
rep_rc=$?
set -e
{
	echo "command: scripts/bench.sh $orig_args"
	echo "wall: ${wall}s, runs: $ntests, vm.sh rc=$vm_rc, report rc=$rep_rc"
	echo "kernel: $(grep -m1 -a -o 'KVMRS-BOOTED.*' "$log" | tr -d '\r')"
	echo "modules: $(grep -m1 -o 'modules [^,]*' "$out/vm.txt" || true)"
	echo "git: $(git -C "$KVMRS_ROOT" describe --always --dirty 2>/dev/null || echo n/a)"
	grep -a -o 'KVMRS-PARAMS.*' "$log" | tr -d '\r'
} > "$out/run.txt"
echo "guest log: $log"
echo "bench: wall time ${wall}s for $ntests runs"
if [ "$vm_rc" != 0 ] || [ "$rep_rc" != 0 ]; then
	echo "bench: FAILED (see above; vm.sh table in $out/vm.txt)" >&2
	exit 1
fi
ok "bench: done, $out"
