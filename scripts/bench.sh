#!/usr/bin/env bash
# kvm-rs benchmark (`make bench`): the fast page fault path, every arm, on
# both emulated machines, one boot each, in emulated time:
#
#   amd    QEMU TCG, SVM + NPT, -icount shift=0 (scripts/vm.sh --icount;
#          BENCHMARKS.md protocol): 1 ns of guest time = 1 instruction
#   intel  Bochs, VMX + EPT with kvm_intel ept=1 eptad=0 pml=0, the seed's
#          own configuration (scripts/vm.sh --machine intel): guest time =
#          instructions / ips (1 ms = 200,000 instructions)
#
#   scripts/bench.sh [options]
#
# In each boot, with our modules:
#   1. tdp_mmu=Y, alternating kvm.tdp_fast_pf=rust,c,off (runtime switch via
#      /sys/module/kvm/parameters/tdp_fast_pf before every run), REPS
#      repetitions of every workload row;
#   2. (amd) one traced run per arm and row under kvmrs-perf-count (perf
#      record -e kvmmmu:fast_page_fault; counted, never timed);
#   3. the modules reloaded in the guest with tdp_mmu=N (kvmrs-load), the
#      shadow MMU's C fast path: REPS timed runs per row (+ traced, amd).
# Every arm and the reload start with an untimed warm-up run.
#
# Benchmark: tools/selftests/fast_pf_bench.c (vCPU thread CPU time per pass
# over the memory).  Rows:
#   amd    v1-64M       -v 1 -b 64M -i 3                    (primary)
#          v1-64M-thp   -v 1 -b 64M -i 3 -s anonymous_thp
#          v2-32M-o     -v 2 -b 32M -i 3 -o                 (2 vCPUs, one region)
#   intel  ept-dirty    -v 1 -b 64M -i 3      write-protection faults after
#                       the dirty log was cleared ("Iteration 2 dirty memory
#                       time")
#          ept-idle     -v 1 -b 64M -i 3 -a   access-tracking faults after
#                       the memory was aged ("Writing to idle memory"; 7.3:
#                       MGLRU, 6.12: idle page tracking)
#   intel, only when asked for (--rows or --stock-timers): the seed's tests
#          with their own timers, which one guest CPU makes coarse
#          stock-dirty  dirty_log_perf_test -v 1 -b 64M -i 3
#          stock-idle   access_tracking_perf_test -v 1 -b 64M
#
# Options:
#   --machine M      amd, intel or both (default both: amd first)
#   --reps N         timed repetitions per arm and row (default 5 amd, 3 intel)
#   --intel-reps N   the same for intel only
#   --rows LIST      comma separated row names (default: amd's three, intel's
#                    ept-dirty and ept-idle); a machine without a row listed
#                    is skipped
#   --stock-timers   add stock-dirty and stock-idle to the intel rows
#   --arms LIST      tdp_mmu=Y arms (default rust,c,off; "stock" = leave the
#                    parameter alone, for --modules stock)
#   --no-shadow      skip the tdp_mmu=N reload and its runs
#   --no-trace       skip the traced runs (amd)
#   --intel-params P kvm_intel parameters (default "ept=1 eptad=0 pml=0")
#   --modules DIR    passed to scripts/vm.sh (default: the production build,
#                    CONFIG_KVM_RUST_FAST_PF without the differential
#                    check's CONFIG_KVM_RUST_FAST_PF_DIFF, which
#                    `scripts/build.sh --production` makes first, in
#                    build/<kernel release>-production)
#   --kdir DIR       kernel tree to boot, passed to scripts/vm.sh (default:
#                    the reference tree); e.g. the gcc-built flavor with the
#                    modules built against it
#   --series LIST    kernel series to measure, space or comma separated
#                    (default: KVER, 7.3 unless set; "7.3,6.12" both, one
#                    reference tree and production build each, one chart):
#                    runs of a series other than 7.3, or of every series when
#                    there are several, are named <machine>@<series>
#   --out DIR        output directory (default build/bench/<timestamp>)
#   --quick          --reps 1 --rows v1-64M,ept-dirty (a smoke run, about
#                    2.5 minutes)
#
# Output: one progress line per finished run (from the guest's serial log),
# then the tables (medians [min-max], ratios, spreads), and the paths of
# results.csv, summary.csv, table.txt, chart.png.  Per machine, DIR/<machine>/
# holds the guest log, scripts/vm.sh's JSON result (guest.json: verdicts
# come from there), its console output (vm.txt), tests.list and plan.tsv.
# Exit status non-zero if a VM failed, any run failed, or a run ran the
# wrong arm.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

orig_args="$*"
machine_arg=both reps="" intel_reps="" rows_arg="" arms_arg="rust,c,off" shadow=1 trace=1
stock_timers=0 moddir="" out="" kdir="" intel_params="ept=1 eptad=0 pml=0" series_arg=$KVER
usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit "${1:-0}"; }
while [ $# -gt 0 ]; do
	case "$1" in
	--machine) machine_arg=$2; shift 2 ;;
	--reps) reps=$2; shift 2 ;;
	--intel-reps) intel_reps=$2; shift 2 ;;
	--rows) rows_arg=$2; shift 2 ;;
	--stock-timers) stock_timers=1; shift ;;
	--arms) arms_arg=$2; shift 2 ;;
	--no-shadow) shadow=0; shift ;;
	--no-trace) trace=0; shift ;;
	--intel-params) intel_params=$2; shift 2 ;;
	--modules) moddir=$2; shift 2 ;;
	--kdir) kdir=$2; shift 2 ;;
	--series) series_arg=$2; shift 2 ;;
	--out) out=$2; shift 2 ;;
	--quick) reps=1; rows_arg=v1-64M,ept-dirty; shift ;;
	-h|--help) usage 0 ;;
	*) echo "bench: unknown argument '$1'" >&2; usage 1 ;;
	esac
done
for r in "$reps" "$intel_reps"; do
	[ -z "$r" ] || [[ "$r" =~ ^[1-9][0-9]*$ ]] || die "bench: --reps wants a positive number"
done
case "$machine_arg" in
amd|intel) machines=("$machine_arg") ;;
both) machines=(amd intel) ;;
*) die "bench: --machine wants amd, intel or both, not '$machine_arg'" ;;
esac
declare -A REPS=([amd]=${reps:-5} [intel]=${intel_reps:-${reps:-3}})

declare -A ROW_ARGS=(
	[v1-64M]="-v 1 -b 64M -i 3"
	[v1-64M-thp]="-v 1 -b 64M -i 3 -s anonymous_thp"
	[v2-32M-o]="-v 2 -b 32M -i 3 -o"
	[ept-dirty]="-v 1 -b 64M -i 3"
	[ept-idle]="-v 1 -b 64M -i 3 -a"
	[stock-dirty]="-v 1 -b 64M -i 3"
	[stock-idle]="-v 1 -b 64M"
)
declare -A ROW_MACHINE=([v1-64M]=amd [v1-64M-thp]=amd [v2-32M-o]=amd [ept-dirty]=intel
	[ept-idle]=intel [stock-dirty]=intel [stock-idle]=intel)
declare -A ROW_PROG=([stock-dirty]=dirty_log_perf_test [stock-idle]=access_tracking_perf_test)
[ -n "$rows_arg" ] || rows_arg="v1-64M,v1-64M-thp,v2-32M-o,ept-dirty,ept-idle"
[ "$stock_timers" = 1 ] && rows_arg="$rows_arg,stock-dirty,stock-idle"
IFS=, read -r -a all_rows <<< "$rows_arg"
IFS=, read -r -a arms <<< "$arms_arg"
for r in "${all_rows[@]}"; do [ -n "${ROW_ARGS[$r]:-}" ] || die "bench: unknown row '$r' (rows: ${!ROW_ARGS[*]})"; done
for a in "${arms[@]}"; do case "$a" in rust|c|off|stock) ;; *) die "bench: unknown arm '$a' (rust, c, off, stock)" ;; esac; done
rows_of() {	# <machine>: its rows, in the order given, once each
	local r seen=" "
	for r in "${all_rows[@]}"; do
		[ "${ROW_MACHINE[$r]}" = "$1" ] || continue
		case "$seen" in *" $r "*) continue ;; esac
		seen="$seen$r "
		echo "$r"
	done
}
run_machines=()
for m in "${machines[@]}"; do [ -n "$(rows_of "$m")" ] && run_machines+=("$m"); done
[ ${#run_machines[@]} -gt 0 ] || die "bench: none of the rows '$rows_arg' runs on --machine $machine_arg"

read -r -a series_list <<< "${series_arg//,/ }"
[ ${#series_list[@]} -gt 0 ] || die "bench: --series wants at least one series ($SUPPORTED_KVERS)"
for sv in "${series_list[@]}"; do
	supported_kver "$sv" || die "bench: --series: $sv is not a supported series ($SUPPORTED_KVERS)"
done
if [ ${#series_list[@]} -gt 1 ] && { [ -n "$kdir" ] || [ -n "$moddir" ]; }; then
	die "bench: --kdir and --modules name one tree: use them with one --series"
fi
# Per series: the tree booted and the modules loaded.
declare -A SKDIR SMOD
for sv in "${series_list[@]}"; do
	SKDIR[$sv]=${kdir:-$(KVER=$sv "$KVMRS_ROOT/scripts/kernel.sh" --print-dir)}
	if [ -n "$moddir" ]; then SMOD[$sv]=$moddir; continue; fi
	# What a distribution would ship: the test build's differential check
	# and its C and off counters are not what is measured.
	KVER=$sv "$KVMRS_ROOT/scripts/build.sh" --kdir "${SKDIR[$sv]}" --production \
		|| die "bench: building the production modules against ${SKDIR[$sv]} failed (see above)"
	SMOD[$sv]=$KVMRS_ROOT/build/$(cat "${SKDIR[$sv]}/include/config/kernel.release")-production/arch/x86/kvm
done
run_name() {	# <machine> <series>: amd, or amd@6.12
	if [ ${#series_list[@]} = 1 ] && [ "$2" = 7.3 ]; then echo "$1"; else echo "$1@$2"; fi
}
[ -x /usr/bin/python3 ] || die "bench: /usr/bin/python3 missing"

stamp=$(date +%Y%m%d-%H%M%S)
[ -n "$out" ] || out=$KVMRS_ROOT/build/bench/$stamp
mkdir -p "$out"
out=$(cd "$out" && pwd)

BENCH=fast_pf_bench
PARAM=/sys/module/kvm/parameters/tdp_fast_pf
set_arm() {	# the guest command prefix selecting an arm
	case "$1" in
	stock|shadow) echo "" ;;
	*) echo "echo $1 > $PARAM && " ;;
	esac
}
row_cmd() {	# <row> [-q]: the guest command of one run of a row
	local prog=${ROW_PROG[$1]:-}
	if [ -n "$prog" ]; then
		# the stock tests do not say which arm ran: kvmrs-params does
		echo "kvmrs-params && $prog ${ROW_ARGS[$1]}"
	else
		echo "$BENCH ${ROW_ARGS[$1]}${2:+ $2}"
	fi
}

# --- the plan of one machine: warm-up, alternating timed runs, traced runs,
# reload, shadow ---
plan_machine() {	# <machine> <dir>
	local m=$1 d=$2 row arm rep kind reload_params="" list=$2/tests.list plan=$2/plan.tsv
	local -a rows
	mapfile -t rows < <(rows_of "$m")
	: > "$list"
	printf '# name\tkind\trow\tarm\trep\targs\n' > "$plan"
	add() {	# <name> <kind> <row> <arm> <rep> <command>
		echo "$1 $6" >> "$list"
		printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$5" "${ROW_ARGS[$3]:-}" >> "$plan"
	}
	kind_of() { if [ -n "${ROW_PROG[$1]:-}" ]; then echo stock; else echo timed; fi; }
	local do_trace=$trace
	[ "$m" = intel ] && do_trace=0	# the per-pass counters say what the trace would
	add warmup setup "${rows[0]}" "${arms[0]}" 0 "$(set_arm "${arms[0]}")$(row_cmd "${rows[0]}" -q)"
	for rep in $(seq 1 "${REPS[$m]}"); do
		for row in "${rows[@]}"; do
			kind=$(kind_of "$row")
			for arm in "${arms[@]}"; do
				add "${row}_${arm}_r$rep" "$kind" "$row" "$arm" "$rep" "$(set_arm "$arm")$(row_cmd "$row")"
			done
		done
	done
	if [ "$do_trace" = 1 ]; then
		for row in "${rows[@]}"; do
			[ "$(kind_of "$row")" = timed ] || continue
			for arm in "${arms[@]}"; do
				add "${row}_${arm}_perf" traced "$row" "$arm" perf \
					"$(set_arm "$arm")kvmrs-perf-count $(row_cmd "$row" -q)"
			done
		done
	fi
	if [ "$shadow" = 1 ]; then
		[ "$m" = intel ] && reload_params=" \"$intel_params\""
		add reload_tdp_mmu_N setup - shadow 0 "kvmrs-load \"tdp_mmu=N\"$reload_params"
		add warmup_shadow setup "${rows[0]}" shadow 0 "$(row_cmd "${rows[0]}" -q)"
		for rep in $(seq 1 "${REPS[$m]}"); do
			for row in "${rows[@]}"; do
				add "${row}_shadow_r$rep" "$(kind_of "$row")" "$row" shadow "$rep" "$(row_cmd "$row")"
			done
		done
		if [ "$do_trace" = 1 ]; then
			for row in "${rows[@]}"; do
				[ "$(kind_of "$row")" = timed ] || continue
				add "${row}_shadow_perf" traced "$row" shadow perf "kvmrs-perf-count $(row_cmd "$row" -q)"
			done
		fi
	fi
}

figure() {	# <log> <test>: the first measured pass of one test, from the guest log
	awk -v b="KVMRS-TEST-BEGIN $2 " -v e="KVMRS-TEST-END $2 " '
		{ sub(/\r$/, "") }
		index($0, b) { on = 1; next }
		index($0, e) { on = 0 }
		on && /KVMRS-BENCH iter=2 phase=(dirty|idle)/ { for (i = 1; i <= NF; i++) if ($i ~ /^(phase|cpu_ns|pf_fast)=/) printf "%s ", $i }
		on && /Iteration 2 dirty memory time|Writing to idle memory/ { sub(/^[ \t]+/, ""); gsub(/ +/, " "); printf "%s ", $0 }
		on && /KVMRS-PERF/ { sub(/.*KVMRS-PERF /, ""); printf "%s ", $0 }
		on && /KVMRS-BENCH config|KVMRS-PARAMS/ { for (i = 1; i <= NF; i++) if ($i ~ /^tdp_(mmu|fast_pf)=/) printf "%s ", $i }' "$1" 2>/dev/null
}

# --- run one machine: scripts/vm.sh in the background, progress from the
# guest's serial log (its KVMRS-TEST-END markers), the verdict from
# scripts/vm.sh's JSON result afterwards ---
vpid=""
trap '[ -n "$vpid" ] && kill -TERM "$vpid" 2>/dev/null; exit 130' INT TERM
declare -A WALL VMRC
run_machine() {	# <machine> <dir> <run name> <series>
	local m=$1 d=$2 rn=$3 sv=$4 ntests vm_timeout t0 n=0 line name rc
	ntests=$(wc -l < "$d/tests.list")
	if [ "$m" = amd ]; then
		# about 4 s of wall time per run (5 s traced) plus boot; generous
		vm_timeout=$(( 120 + ntests * 20 ))
	else
		# about 10 s per run on a busy 2-core host, 45-70 s to boot
		vm_timeout=$(( 300 + ntests * 60 ))
	fi
	local -a vm_args=(--machine "$m" --quiet --tests "$d/tests.list" --log "$d/guest.log"
		--json "$d/guest.json" --timeout "$vm_timeout")
	if [ "$m" = amd ]; then vm_args+=(--icount); else vm_args+=(--intel-params "$intel_params"); fi
	vm_args+=(--modules "${SMOD[$sv]}" --kdir "${SKDIR[$sv]}")
	step "bench: $rn: $ntests runs (rows $(rows_of "$m" | tr '\n' ' ')x arms ${arms[*]}$([ "$shadow" = 1 ] && echo " + tdp_mmu=N") x ${REPS[$m]} reps), one boot, $d"
	rm -f "$d/guest.log" "$d/guest.json"
	t0=$(date +%s)
	"$KVMRS_ROOT/scripts/vm.sh" "${vm_args[@]}" > "$d/vm.txt" 2>&1 &
	vpid=$!
	while IFS= read -r line; do
		line=${line//$'\r'/}
		case "$line" in
		*KVMRS-BOOTED*) printf '[%4ds] %s booted\n' $(( $(date +%s) - t0 )) "$m" ;;
		*KVMRS-LOAD-FAILED*) printf '[%4ds] %s: module load FAILED\n' $(( $(date +%s) - t0 )) "$m" ;;
		*KVMRS-TEST-END*)
			set -- ${line#*KVMRS-TEST-END }
			name=$1 rc=$2
			n=$((n + 1))
			printf '[%4ds] %-5s %3d/%d %-24s %s %s\n' $(( $(date +%s) - t0 )) "$m" "$n" "$ntests" \
				"$name" "$rc" "$(figure "$d/guest.log" "$name")" ;;
		esac
	done < <(tail -n +1 -F --pid="$vpid" "$d/guest.log" 2>/dev/null)
	set +e
	wait "$vpid"
	VMRC[$rn]=$?
	set -e
	vpid=""
	WALL[$rn]=$(( $(date +%s) - t0 ))
	if [ "${VMRC[$rn]}" != 0 ]; then
		echo "bench: $rn: scripts/vm.sh failed (rc=${VMRC[$rn]}); the end of its output ($d/vm.txt):" >&2
		tail -15 "$d/vm.txt" | sed 's/^/  /' >&2
	fi
}

t_all=$(date +%s)
report_args=()
run_names=()
for sv in "${series_list[@]}"; do
	for m in "${run_machines[@]}"; do
		rn=$(run_name "$m" "$sv")
		run_names+=("$rn")
		mkdir -p "$out/$rn"
		plan_machine "$m" "$out/$rn"
		run_machine "$m" "$out/$rn" "$rn" "$sv"
		# A boot that never started leaves no guest log: nothing to report.
		[ -f "$out/$rn/guest.log" ] || die "bench: $rn: no guest log (scripts/vm.sh failed before the boot, see above)"
		report_args+=(--run "$rn=$out/$rn")
	done
done
wall=$(( $(date +%s) - t_all ))
echo

# --- report ---------------------------------------------------------------------
set +e
/usr/bin/python3 "$KVMRS_ROOT/tools/bench/report.py" "${report_args[@]}" --out "$out"
rep_rc=$?
set -e
jq_field() { python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); print(j.get(sys.argv[2]))' "$1" "$2" 2>/dev/null || echo n/a; }
{
	echo "command: scripts/bench.sh $orig_args"
	echo "wall: ${wall}s$(for m in "${run_names[@]}"; do printf ', %s %ss (%s runs, vm.sh rc=%s)' "$m" "${WALL[$m]}" "$(wc -l < "$out/$m/tests.list")" "${VMRC[$m]}"; done), report rc=$rep_rc"
	echo "git: $(git -C "$KVMRS_ROOT" describe --always --dirty 2>/dev/null || echo n/a)"
	for m in "${run_names[@]}"; do
		j=$out/$m/guest.json
		echo "$m: verdict $(jq_field "$j" verdict), kernel $(jq_field "$j" kernel), modules $(jq_field "$j" modules), vendor params '$(jq_field "$j" "${m%@*}_params")'"
		grep -a -o 'KVMRS-PARAMS.*' "$out/$m/guest.log" | tr -d '\r' | sed "s/^/$m: /"
	done
} > "$out/run.txt"
echo "bench: wall time ${wall}s$(for m in "${run_names[@]}"; do printf ', %s %ss' "$m" "${WALL[$m]}"; done)"
failed=0
[ "$rep_rc" = 0 ] || failed=1
for m in "${run_names[@]}"; do [ "${VMRC[$m]}" = 0 ] || failed=1; done
if [ "$failed" = 1 ]; then
	echo "bench: FAILED (see above; per machine: $out/<machine>/vm.txt and guest.json)" >&2
	exit 1
fi
ok "bench: done, $out"
