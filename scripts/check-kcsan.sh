#!/usr/bin/env bash
# `make check-kcsan`: the multi-threaded VM tests (tools/vm/kcsan.list) on the
# KCSAN kernel (config/kcsan.config), 2 guest CPUs on multi-threaded TCG, with
# our modules in tdp_fast_pf=rust and tdp_fast_pf=c mode and with the tree's
# stock kvm modules as the baseline. It counts KCSAN reports ("BUG: KCSAN:
# data-race in A / B") per configuration and per function pair and classifies
# each pair:
#   kvm-rs         an access is in kvm-rs code: the Rust crate (rust/, its
#                  helpers) or the kvm_rs_* C glue of patches/7.3
#   kvm-rs-caller  both accesses are in other code, but one stack passes
#                  through kvm-rs code
#   kvm-c-patched  an access is in a KVM C function that patches/7.3 changes
#                  (e.g. fast_page_fault(), into which the inline kvm_rs_*
#                  helpers of kvm_rs_internal.h are inlined: KCSAN's stack
#                  shows no inlined frames)
#   kvm-c          an access is in KVM's own C (kvm.ko, kvm-amd.ko)
#   elsewhere      the core kernel
# The self-check: the list's kcsan-plant test sets the test build's planted
# data race (kvm.tdp_fast_pf_kcsan_plant, a plain x++ in
# kvm_rs_kcsan_plant_hit() on every fast page fault) under densely sampling
# KCSAN knobs; with our modules (rust, c) KCSAN must report that race in
# that test, or the run fails: a run that cannot see the planted race
# proves nothing by its zeros. The planted race reported in any other test
# is a kvm-rs report like any other.
# Verdict: FAIL on a kvm-rs report; on a kvm-rs-caller or kvm-c-patched
# report the stock baseline does not show; on any other kernel report
# (WARNING, BUG, lockdep, RCU stall, ...), a failed test, a hang or a module
# that does not load. KCSAN reports in KVM's C and elsewhere are listed with
# whether the stock modules show the same pair, and do not fail the check.
#
#   scripts/check-kcsan.sh              build (cached), run the three VMs, analyze
#   scripts/check-kcsan.sh --analyze    analyze the logs of the last run again
#
# Environment: KCSAN_CONFIGS (default "rust c stock") the configurations to
# run; KCSAN_TESTS a comma-separated subset of kcsan.list's names;
# KCSAN_PLANT=1 sets kvm.tdp_fast_pf_kcsan_plant=Y for the whole run of our
# modules, i.e. the planted race in every test: the check must then fail
# (make check-kcsan KCSAN_PLANT=1 KCSAN_CONFIGS=rust
# KCSAN_TESTS=fast_pf-spurious-dense shows that it does).
#
# vm.sh's own exit status is not the verdict here: it fails on every "BUG:"
# line, so on every KCSAN report. The logs are build/logs/kcsan-<cfg>.log,
# vm.sh's results <log>.json, the summary build/logs/kcsan-summary.json.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
cd "$KVMRS_ROOT"

analyze_only=0
case "${1:-}" in
"") ;;
--analyze) analyze_only=1 ;;
*) die "check-kcsan: unknown argument '$1' (usage: check-kcsan.sh [--analyze])" ;;
esac

logdir=${KVMRS_KCSAN_LOGDIR:-$KVMRS_ROOT/build/logs}
mkdir -p "$logdir"
# name, kvm.ko parameters, modules (ours or the tree's stock ones)
all_configs=("rust|tdp_mmu=Y tdp_fast_pf=rust|ours" "c|tdp_mmu=Y tdp_fast_pf=c|ours" "stock|tdp_mmu=Y|stock")
configs=()
for want in ${KCSAN_CONFIGS:-rust c stock}; do
	found=0
	for cfg in "${all_configs[@]}"; do
		[ "${cfg%%|*}" = "$want" ] && { configs+=("$cfg"); found=1; }
	done
	[ $found = 1 ] || die "check-kcsan: unknown configuration '$want' in KCSAN_CONFIGS (rust, c, stock)"
done
case "${KCSAN_PLANT:-0}" in
0|1) ;;
*) die "check-kcsan: KCSAN_PLANT=${KCSAN_PLANT} (want 0 or 1)" ;;
esac
tests=(--tests "$KVMRS_ROOT/tools/vm/kcsan.list")
if [ -n "${KCSAN_TESTS:-}" ]; then
	for t in ${KCSAN_TESTS//,/ }; do
		grep -q -E "^$t[[:space:]]" tools/vm/kcsan.list || die "check-kcsan: no test '$t' in tools/vm/kcsan.list"
	done
	tests=(--suite "$KVMRS_ROOT/tools/vm/kcsan.list" --tests "$KCSAN_TESTS")
fi
names=()
for cfg in "${configs[@]}"; do names+=("${cfg%%|*}"); done
start=$(date +%s)

if [ "$analyze_only" = 0 ]; then
	scripts/setup.sh || exit 1
	scripts/kernel.sh --flavor kcsan || exit 1
	kdir=$(scripts/kernel.sh --flavor kcsan --print-dir)
	release=$(cat "$kdir/include/config/kernel.release")
	out=$KVMRS_ROOT/build/$release-kcsan
	scripts/build.sh --kdir "$kdir" --out "$out" || exit 1
	scripts/selftests.sh >/dev/null || exit 1
	step "check-kcsan: $(grep -E '^CONFIG_(KCSAN|KCSAN_STRICT|KCSAN_INTERRUPT_WATCHER|KCSAN_REPORT_ONCE_IN_MS|KCSAN_SKIP_WATCH|KCSAN_REPORT_VALUE_CHANGE_ONLY|KCSAN_ASSUME_PLAIN_WRITES_ATOMIC|RCU_CPU_STALL_TIMEOUT)=' "$kdir/.config" | tr '\n' ' ')"
	# KCSAN instruments C only (rustc gets no -Zsanitizer here). The
	# crate's SPTE loads and compare-exchanges go through the kernel crate's
	# atomics, i.e. the C helpers (rust/helpers), which are compiled with
	# KCSAN's flags, call the instrumented atomics and are inlined into the
	# crate's object: those accesses are checked; the crate's own plain
	# loads and stores are not.
	objdump=${LLVM_PREFIX}llvm-objdump; [ -x "$objdump" ] || objdump=objdump
	hooks=$("$objdump" -dr "$out/arch/x86/kvm/mmu/kvm_rs.o" 2>/dev/null | grep -E 'R_X86_64_PLT32[[:space:]]+__(tsan|kcsan)_' | grep -vc __tsan_init || true)
	step "check-kcsan: the Rust crate's object calls KCSAN ${hooks:-0} times (__kcsan_check_access, __tsan_*: the inlined C helpers)"
	for cfg in "${configs[@]}"; do
		IFS='|' read -r name params mods <<< "$cfg"
		if [ "$mods" = ours ]; then
			mods=$out/arch/x86/kvm
			[ "${KCSAN_PLANT:-0}" = 1 ] && params="$params tdp_fast_pf_kcsan_plant=Y"
		fi
		step "check-kcsan: $name: $params (modules: ${mods##*/build/})"
		# vm.sh fails whenever KCSAN reported anything (a "BUG:" line); its
		# splat list is left out here, the verdict is below
		scripts/vm.sh --quiet --kdir "$kdir" --modules "$mods" --kvm-params "$params" \
			--smp 2 --tcg multi "${tests[@]}" \
			--timeout 2400 --test-timeout 900 \
			--log "$logdir/kcsan-$name.log" --json "$logdir/kcsan-$name.json" 2>&1 \
			| grep --line-buffered -v -E '^  [0-9]+:|kernel splat in the guest log|^vm: FAILED$|vm: no failure'
	done
fi

for cfg in "${configs[@]}"; do
	name=${cfg%%|*}
	[ -f "$logdir/kcsan-$name.log" ] || die "check-kcsan: no log $logdir/kcsan-$name.log (run without --analyze first)"
done

python3 - "$logdir" "$(( $(date +%s) - start ))" "$analyze_only" "$KVMRS_ROOT/patches/$KVER" "${names[*]}" <<'PY'
import glob, json, os, re, sys
from collections import Counter, defaultdict

logdir, wall, analyze_only, patchdir = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1", sys.argv[4]
# KVM C functions the patch series adds or changes: hunk headers name the
# enclosing function, added lines at column 0 define new ones
PATCHED = set()
for pf in glob.glob(os.path.join(patchdir, "*.patch")):
    for l in open(pf, errors="replace"):
        m = re.match(r"^@@ [^@]* @@ .*?\b(\w+)\(", l)
        if m:
            PATCHED.add(m.group(1))
        m = re.match(r"^\+(?!\+\+)(?:[A-Za-z_][\w ]*[\s*])(\w+)\([^;]*$", l)
        if m and not l.startswith("+\t") and not l.startswith("+ "):
            PATCHED.add(m.group(1))
PATCHED -= {"if", "for", "while", "switch", "return", "sizeof"}
CONFIGS = sys.argv[5].split()
OURS = [c for c in CONFIGS if c != "stock"]
# the planted race (kvm.tdp_fast_pf_kcsan_plant) and the test that sets it
PLANT_FN, PLANT_TEST = "kvm_rs_kcsan_plant_hit", "kcsan-plant"
TEST_BEGIN = re.compile(r"KVMRS-TEST-BEGIN (\S+)")
PLANT_ADDR = re.compile(r"KVMRS-KCSAN-PLANT-ADDR (0x[0-9a-f]+)")
# vm.sh's kernel report pattern (scripts/vm.sh, splat_re)
SPLAT = re.compile(r"WARNING:|BUG:|Oops|general protection|lockdep is turned off|"
                   r"DEBUG_LOCKS_WARN_ON|possible recursive locking|possible circular locking|"
                   r"inconsistent lock state|suspicious RCU usage|RCU stall|rcu_.*detected stall|"
                   r"detected stalls on CPU|KASAN:|UBSAN:|Call Trace:|[Kk]ernel panic")
TS = r"^(?:\[\s*\d+\.\d+\]\s*)?"
TITLE = re.compile(TS + r"BUG: KCSAN: (.+?) in (.+?)\s*$")
ACCESS = re.compile(TS + r"\s*(race at unknown origin, with )?([a-z -]+(?:\([a-z ]+\))*) to (0x[0-9a-f]+) "
                    r"of \d+ bytes by (?:task \d+|interrupt) on cpu \d+:")
FRAME = re.compile(TS + r"\s+([A-Za-z_.$][\w.$]*)\+0x[0-9a-f]+/0x[0-9a-f]+(?: \[(\w+)\])?")
END = re.compile(TS + r"={20,}")
KVM_MODS = {"kvm", "kvm_amd", "kvm_intel"}

def is_kvmrs(sym, mod):
    # the crate (Rust symbols, legacy or v0 mangled, its inlined-or-not
    # C helpers) and the C glue kvm_rs_*: all in kvm.ko
    if "kvm_rs" in sym:
        return True
    return mod == "kvm" and (sym.startswith("_R") or sym.startswith("_ZN") or sym.startswith("rust_helper_"))

def strip_mod(s):
    # "fn", "fn [kvm]", "fn+0x6d5/0x8f0 [kvm]" -> "fn"
    return re.sub(r"\+0x[0-9a-f]+/0x[0-9a-f]+", "", re.sub(r"\s*\[\w+\]", "", s)).strip()

def parse(path):
    lines = open(path, errors="replace").read().replace("\r", "").splitlines()
    reports, other, in_kcsan, cur, test, plant_addrs = [], [], False, None, None, set()
    for l in lines:
        m = TEST_BEGIN.search(l)
        if m:
            test = m.group(1)
        m = PLANT_ADDR.search(l)
        if m:
            plant_addrs.add(int(m.group(1), 16))
        m = TITLE.search(l)
        if m and not l.lstrip().startswith("+ "):
            cur = {"kind": m.group(1), "title": m.group(2), "stacks": [], "unknown": False, "test": test}
            reports.append(cur)
            in_kcsan, n_in = True, 0
            continue
        if in_kcsan:
            n_in += 1
            # a report ends at its ===== line; a kernel report of another
            # kind or 200 lines without the end close it too
            if END.search(l) or n_in > 200:
                in_kcsan, cur = False, None
                continue
            if SPLAT.search(l) and "KVMRS-" not in l and not l.startswith("+ "):
                in_kcsan, cur = False, None
                other.append(l.strip())
                continue
            a = ACCESS.search(l)
            if a:
                cur["stacks"].append({"access": a.group(2).strip(), "addr": int(a.group(3), 16), "frames": []})
                if a.group(1):
                    cur["unknown"] = True
                continue
            f = FRAME.search(l)
            if f and cur["stacks"]:
                cur["stacks"][-1]["frames"].append((f.group(1), f.group(2)))
            continue
        if SPLAT.search(l) and "KVMRS-" not in l and not l.startswith("+ "):
            other.append(l.strip())
    for r in reports:
        names = [strip_mod(x) for x in r["title"].split(" / ")]
        if r["unknown"] or len(names) == 1:
            names = names[:1]
            r["pair"] = names[0] + " / <unknown origin>"
        else:
            r["pair"] = " / ".join(sorted(names))
        if r["kind"] != "data-race":
            r["pair"] = r["kind"] + ": " + r["pair"]
        tops = [s["frames"][0] for s in r["stacks"] if s["frames"]]
        if not tops:  # no stacks parsed: fall back on the title
            tops = [(n, None) for n in names]
        every = [f for s in r["stacks"] for f in s["frames"]]
        if any(is_kvmrs(*t) for t in tops):
            r["class"] = "kvm-rs"
        elif any(is_kvmrs(*f) for f in every):
            r["class"] = "kvm-rs-caller"
        elif any(mod in KVM_MODS and sym in PATCHED for sym, mod in tops):
            r["class"] = "kvm-c-patched"
        elif any(mod in KVM_MODS for _, mod in tops):
            r["class"] = "kvm-c"
        else:
            r["class"] = "elsewhere"
        r["access"] = " / ".join(s["access"] for s in r["stacks"])
        # the planted counter's address (the helper prints it), or its
        # function as the first frame
        r["planted"] = (PLANT_FN in r["title"] or any(sym == PLANT_FN for sym, _ in tops)
                        or any(s["addr"] in plant_addrs for s in r["stacks"]))
        if r["planted"]:
            r["class"] = "kvm-rs"
            if PLANT_FN not in r["pair"]:
                r["pair"] = "%s (planted counter): %s" % (PLANT_FN, r["pair"])
    return reports, other, lines

res = {}
for c in CONFIGS:
    log = os.path.join(logdir, "kcsan-%s.log" % c)
    reports, other, lines = parse(log)
    j = None
    try:
        j = json.load(open(os.path.join(logdir, "kcsan-%s.json" % c)))
    except (OSError, ValueError):
        pass
    stats = {}
    for l in lines:
        m = re.match(TS + r"\s*(enabled|used_watchpoints|setup_watchpoints|data_races|"
                     r"assert_failures|no_capacity|report_races|races_unknown_origin|"
                     r"unencodable_accesses|encoding_false_positives):\s*(\d+)\s*$", l)
        if m:
            stats[m.group(1)] = int(m.group(2))
    res[c] = {"reports": reports, "other": other, "json": j, "stats": stats}

stock_pairs = {r["pair"] for r in res["stock"]["reports"]} if "stock" in res else set()
pairs = defaultdict(lambda: {"class": None, "counts": Counter(), "access": ""})
# the self-check's reports: the planted race, in the test that plants it
planted = {c: [r for r in res[c]["reports"] if r["planted"] and r["test"] == PLANT_TEST] for c in CONFIGS}
for c in CONFIGS:
    for r in res[c]["reports"]:
        if r["planted"] and r["test"] == PLANT_TEST:
            continue
        p = pairs[r["pair"]]
        order = ["elsewhere", "kvm-c", "kvm-c-patched", "kvm-rs-caller", "kvm-rs"]
        if p["class"] is None or order.index(r["class"]) > order.index(p["class"]):
            p["class"] = r["class"]
        p["counts"][c] += 1
        p["access"] = p["access"] or r["access"]

problems, notes = [], []
print()
print("Self-check, the planted race (%s) in %s:" % (PLANT_FN, PLANT_TEST))
for c in CONFIGS:
    j = res[c]["json"]
    ran = j is not None and any(t["name"] == PLANT_TEST and t["result"] == "PASS" for t in j["tests"])
    listed = j is not None and any(t["name"] == PLANT_TEST for t in j["tests"])
    print("  %-6s %s" % (c, "%d KCSAN reports" % len(planted[c]) if ran else ("not run" if not listed else "did not pass")))
    if c in OURS and listed and not planted[c]:
        problems.append("%s: self-check: KCSAN reported no planted race in %s, so it cannot be shown to see the fast path"
                        % (c, PLANT_TEST))
    elif c in OURS and not listed:
        notes.append("%s: the self-check %s was not run" % (c, PLANT_TEST))
print()
print("KCSAN reports per function pair (rust, c: our modules; stock: the tree's own)")
hdr = "%-70s %-14s %5s %5s %5s  %s" % ("PAIR", "CLASS", "rust", "c", "stock", "STOCK SHOWS IT")
print(hdr)
for pair, p in sorted(pairs.items(), key=lambda kv: (kv[1]["class"], kv[0])):
    shown = "yes" if pair in stock_pairs else "no"
    print("%-70s %-14s %5d %5d %5d  %s" % (pair, p["class"], p["counts"]["rust"], p["counts"]["c"],
                                         p["counts"]["stock"], shown))
    if p["class"] == "kvm-rs":
        problems.append("KCSAN report in kvm-rs code: %s (rust %d, c %d)%s" % (
            pair, p["counts"]["rust"], p["counts"]["c"],
            ": the planted race outside %s (kvm.tdp_fast_pf_kcsan_plant=Y)" % PLANT_TEST if PLANT_FN in pair else ""))
    elif p["class"] == "kvm-rs-caller" and shown == "no":
        problems.append("KCSAN report reached through kvm-rs code, not in the stock baseline: %s" % pair)
    elif p["class"] == "kvm-c-patched" and shown == "no":
        problems.append("KCSAN report in KVM C that patches/ changes, not in the stock baseline: %s" % pair)
    elif shown == "no":
        notes.append("%s (%s) is not in the stock run; KCSAN samples, so one run without it is not proof it is new" % (pair, p["class"]))
if not pairs:
    print("(none)")
print()
print("%-8s %8s %7s %7s %14s %6s %10s %8s %6s  %s" % ("CONFIG", "REPORTS", "KVM-RS", "KVM-C", "ELSEWHERE", "PAIRS",
      "WATCHPTS", "RACES", "TESTS", "OTHER"))
summary = {"wall_s_this_script": wall, "analyze_only": analyze_only, "configs": {}, "pairs": {}}
for c in CONFIGS:
    r = res[c]
    cls = Counter(x["class"] for x in r["reports"])
    j = r["json"]
    tests = j["tests"] if j else []
    bad = [t for t in tests if t["result"] not in ("PASS", "SKIP")]
    tstr = "%d/%d" % (sum(t["result"] == "PASS" for t in tests), len(tests))
    skipped = [t["name"] for t in tests if t["result"] == "SKIP"]
    print("%-8s %8d %7d %7d %14d %6d %10s %8s %6s  %s" % (
        c, len(r["reports"]), cls["kvm-rs"] + cls["kvm-rs-caller"], cls["kvm-c"] + cls["kvm-c-patched"], cls["elsewhere"],
        len({x["pair"] for x in r["reports"]}), r["stats"].get("setup_watchpoints", "-"),
        r["stats"].get("data_races", "-"), tstr, len(r["other"])))
    if j is None:
        problems.append("%s: no vm.sh result (%s)" % (c, os.path.join(logdir, "kcsan-%s.json" % c)))
    else:
        if j["timed_out"]:
            problems.append("%s: the guest hung (killed after the timeout)" % c)
        elif not j["done"]:
            problems.append("%s: the guest stopped before the end (qemu rc=%s)" % (c, j["qemu_rc"]))
        if j["load_failed"]:
            problems.append("%s: the modules did not load" % c)
        for t in bad:
            problems.append("%s: test %s %s %s %s" % (c, t["name"], t["result"], t.get("note", ""),
                                                   "; ".join(t.get("why", [])[:2])))
    if skipped:
        notes.append("%s: skipped %s" % (c, " ".join(skipped)))
    if r["stats"].get("enabled", 1) != 1 or "setup_watchpoints" not in r["stats"]:
        problems.append("%s: KCSAN not shown enabled with watchpoints (kcsan-stats: %s)" % (c, r["stats"] or "missing"))
    for l in r["other"][:5]:
        problems.append("%s: kernel report that is not KCSAN: %s" % (c, l))
    summary["configs"][c] = {"reports": len(r["reports"]), "planted_in_self_check": len(planted[c]), "by_class": dict(cls), "kcsan_stats": r["stats"],
                             "tests": {t["name"]: t["result"] for t in tests}, "other_reports": r["other"][:20],
                             "vm_wall_s": j["wall_s"] if j else None}
for pair, p in pairs.items():
    summary["pairs"][pair] = {"class": p["class"], "counts": dict(p["counts"]), "stock_shows": pair in stock_pairs,
                              "access": p["access"]}
summary["problems"], summary["notes"] = problems, notes
summary["patched_functions"] = sorted(PATCHED)
json.dump(summary, open(os.path.join(logdir, "kcsan-summary.json"), "w"), indent=1)
print()
for n in notes:
    print("note: " + n)
vmw = sum((res[c]["json"] or {}).get("wall_s", 0) or 0 for c in CONFIGS)
print("check-kcsan: VM wall time %ds (%s)%s; logs: %s/kcsan-{%s}.log; summary: kcsan-summary.json"
      % (vmw, " ".join(CONFIGS), "" if analyze_only else ", whole run %ds" % wall, logdir, ",".join(CONFIGS)))
for p in problems:
    print("FAIL: " + p)
if problems:
    print("check-kcsan: FAILED (%d problems)" % len(problems))
    sys.exit(1)
selfcheck = ", ".join("%s %d" % (c, len(planted[c])) for c in OURS if planted[c])
print("check-kcsan: passed: %s0 reports in kvm-rs code%s, no other kernel report, every test passed or skipped"
      % ("KCSAN reported the planted race in the self-check (%s), " % selfcheck if selfcheck else
         "the self-check did not run (KCSAN_TESTS), ", " otherwise" if selfcheck else ""))
PY
