#!/usr/bin/env bash
# Measure how often one guest command fails, per module set, kvm
# configuration and QEMU TCG threading mode, under the same conditions.
#
#   scripts/flake-rate.sh [options]
#
# Options:
#   --cells "LIST"      cells to measure (default: all ten below), each
#                       <modules>-<tcg>: modules stock (the reference tree's
#                       own kvm modules, no kvm-rs patch), rust, c, off
#                       (ours, tdp_mmu=Y, tdp_fast_pf=...) or N (ours,
#                       tdp_mmu=N); tcg multi (MTTCG) or single
#   --boots N           boots per cell (default 4)
#   --runs K            runs of the command per boot (default 6)
#   --cmd "COMMAND"     the guest command (default:
#                       dirty_log_perf_test -v 2 -b 32M -i 3 -o); repeatable:
#                       each boot then runs the commands in turn, K rounds,
#                       and the table has one line per cell and command
#   --smp N             guest CPUs (default 2)
#   --test-timeout S    per-run limit, guest seconds (default 150)
#   --out DIR           results (default build/flake-rate/<time>)
#
# The cells are interleaved: boot b of every cell runs before boot b+1 of
# any, with the order rotated each round, so that a change in the host's
# load hits all cells alike. Each run's verdict comes from vm.sh's JSON
# result. Output: DIR/runs.csv (one line per run), DIR/table.txt (failures /
# runs per cell, by kind, with a 95% Clopper-Pearson interval), printed at
# the end. Exits 0 when every boot completed (whatever the failure rates).
set -uo pipefail
. "$(dirname "$0")/lib.sh"
cd "$KVMRS_ROOT"

cells="stock-multi rust-multi c-multi off-multi N-multi stock-single rust-single c-single off-single N-single"
boots=4 runs=6 smp=2 test_timeout=150 out=""
cmds=()
usage() { sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit "${1:-0}"; }
while [ $# -gt 0 ]; do
	case "$1" in
	--cells) cells=$2; shift 2 ;;
	--boots) boots=$2; shift 2 ;;
	--runs) runs=$2; shift 2 ;;
	--cmd) cmds+=("$2"); shift 2 ;;
	--smp) smp=$2; shift 2 ;;
	--test-timeout) test_timeout=$2; shift 2 ;;
	--out) out=$2; shift 2 ;;
	-h|--help) usage 0 ;;
	*) echo "flake-rate: unknown argument '$1'" >&2; usage 1 ;;
	esac
done
for v in "$boots" "$runs" "$smp" "$test_timeout"; do
	[[ "$v" =~ ^[1-9][0-9]*$ ]] || die "flake-rate: --boots, --runs, --smp and --test-timeout want positive integers"
done
read -r -a cell_list <<< "$cells"
for c in "${cell_list[@]}"; do
	case "$c" in
	stock-multi|stock-single|rust-*|c-*|off-*|N-*)
		case "${c##*-}" in multi|single) ;; *) die "flake-rate: cell '$c': the TCG mode is multi or single" ;; esac ;;
	*) die "flake-rate: unknown cell '$c' (stock|rust|c|off|N followed by -multi or -single)" ;;
	esac
done
[ ${#cmds[@]} -gt 0 ] || cmds=("dirty_log_perf_test -v 2 -b 32M -i 3 -o")
[ -n "$out" ] || out=$KVMRS_ROOT/build/flake-rate/$(date +%Y%m%d-%H%M%S)
mkdir -p "$out"
csv=$out/runs.csv
[ -f "$csv" ] || echo "cell,cmd,boot,run,result,wall_s,guest_s,note,log" > "$csv"

# cell_args <cell>: vm.sh options for it.
cell_args() {
	local mods=${1%-*} tcg=${1##*-}
	case "$mods" in
	stock) echo "--modules stock --tcg $tcg" ;;
	N) echo "--kvm-params tdp_mmu=N --tcg $tcg" ;;
	*) echo "--kvm-params tdp_mmu=Y,tdp_fast_pf=$mods --tcg $tcg" ;;
	esac
}

list=$out/runs.list
: > "$list"
for r in $(seq 1 "$runs"); do
	for j in "${!cmds[@]}"; do echo "c$((j + 1))-run$r ${cmds[$j]}" >> "$list"; done
done
printf '%s\n' "${cmds[@]}" > "$out/cmds"
vm_timeout=$(( runs * ${#cmds[@]} * (test_timeout + 30) + 120 ))
n=${#cell_list[@]}
start=$(date +%s)
for b in $(seq 1 "$boots"); do
	for k in $(seq 0 $((n - 1))); do
		c=${cell_list[$(( (k + b - 1) % n ))]}
		read -r -a a <<< "$(cell_args "$c")"
		# tdp_mmu=Y,tdp_fast_pf=x: vm.sh wants spaces between parameters
		for i in "${!a[@]}"; do a[$i]=${a[$i]//,/ }; done
		log=$out/$c-boot$b.log
		step "flake-rate: $c boot $b/$boots ($runs runs; $(( $(date +%s) - start ))s so far)"
		scripts/vm.sh --quiet "${a[@]}" --smp "$smp" --tests "$list" \
			--test-timeout "$test_timeout" --timeout "$vm_timeout" \
			--log "$log" --json "${log%.log}.json" > "${log%.log}.out" 2>&1
		if [ ! -f "${log%.log}.json" ]; then
			echo "flake-rate: $c boot $b: no result (see ${log%.log}.out)"
			echo "$c,-,$b,-,NO-RESULT,,,,$log" >> "$csv"
			continue
		fi
		python3 - "$c" "$b" "${log%.log}.json" >> "$csv" <<'PY'
import json, sys
cell, boot, path = sys.argv[1:]
r = json.load(open(path))
for t in r["tests"]:
    j, i = t["name"][1:].split("-run")
    note = " / ".join([t["note"]] + t.get("why", [])[:2]).replace(",", ";").strip(" /")
    if r["kernel_reports"]:
        note += " [kernel report]"
    print(f'{cell},{j},{boot},{i},{t["result"]},{t["wall_s"] or ""},{t["guest_s"] or ""},{note},{r["log"]}')
PY
		grep "^$c,[0-9-]*,$b," "$csv" | awk -F, '{printf "%s ", $5} END {print ""}' | sed 's/^/  /'
	done
done

python3 - "$csv" "$out/cmds" "$smp" > "$out/table.txt" <<'PY'
import csv, sys
from math import comb
rows = list(csv.DictReader(open(sys.argv[1])))
def cp(k, n, a=0.05):
    # exact Clopper-Pearson interval by bisection on the binomial tail
    def tail_ge(p): return sum(comb(n, i) * p**i * (1-p)**(n-i) for i in range(k, n+1))
    def tail_le(p): return sum(comb(n, i) * p**i * (1-p)**(n-i) for i in range(0, k+1))
    def solve(f, target):
        lo, hi = 0.0, 1.0
        for _ in range(60):
            mid = (lo + hi) / 2
            if f(mid) < target: lo = mid
            else: hi = mid
        return (lo + hi) / 2
    lo = 0.0 if k == 0 else solve(tail_ge, a / 2)
    hi = 1.0 if k == n else 1 - solve(lambda p: tail_le(1 - p), a / 2)
    return lo, hi
cmds = open(sys.argv[2]).read().splitlines()
cells = []
for r in rows:
    if r["cell"] not in cells: cells.append(r["cell"])
for j, c in enumerate(cmds, 1):
  print(f"command {j}: {c}  (guest CPUs: {sys.argv[3]})")
for j in range(1, len(cmds) + 1):
  print(f"{'cell':14} {'cmd':>3} {'failed/runs':>11} {'rate':>6}  {'95% CI':>13}  {'FAIL':>4} {'TIMEOUT':>7} {'CRASH':>5} {'other':>5}  boots")
  for c in cells:
    rs = [r for r in rows if r["cell"] == c and r["cmd"] == str(j)]
    bad = [r for r in rs if r["result"] != "PASS"]
    n, k = len(rs), len(bad)
    kinds = {x: sum(1 for r in bad if r["result"] == x) for x in ("FAIL", "TIMEOUT", "CRASH")}
    other = k - sum(kinds.values())
    lo, hi = cp(k, n) if n else (0, 0)
    nb = len({r["boot"] for r in rs})
    print(f"{c:14} {j:>3} {k:>5}/{n:<5} {100*k/max(n,1):5.1f}%  [{100*lo:4.1f}-{100*hi:5.1f}%]  "
          f"{kinds['FAIL']:>4} {kinds['TIMEOUT']:>7} {kinds['CRASH']:>5} {other:>5}  {nb}")
PY
cat "$out/table.txt"
echo "flake-rate: $(( $(date +%s) - start ))s; runs: $csv"
