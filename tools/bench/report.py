#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-only
"""kvm-rs `make bench` report: read what scripts/bench.sh's VM runs left
behind, write results.csv / summary.csv / table.txt / chart.png, print the
table.

    tools/bench/report.py --run amd=DIR [--run intel=DIR] --out DIR [--no-png]

Each DIR (one scripts/vm.sh boot) holds:
  plan.tsv    written by scripts/bench.sh, one test per line, tab separated:
                  name  kind  row  arm  rep  args
              kind: timed | traced | stock | setup (warm-up, module reload:
              must pass, not reported)
  guest.json  scripts/vm.sh's machine-readable result: the verdict, kernel
              reports, and per test its result (PASS/FAIL/SKIP/TIMEOUT/...),
              wall and guest time.  Every verdict comes from here.
  guest.log   the guest's serial console: the figures.  The guest output of
              every test sits between
                  KVMRS-TEST-BEGIN <name> guest_time=..
                  KVMRS-TEST-END <name> rc=N ..
              and the benchmark prints (tools/selftests/fast_pf_bench.c)
                  KVMRS-BENCH config vcpus=.. pages=.. tdp_mmu=Y tdp_fast_pf=rust ...
                  KVMRS-BENCH iter=2 phase=dirty|idle cpu_ns=.. pf_fast=.. ...
                  KVMRS-BENCH result=pass
              kvmrs-perf-count prints KVMRS-PERF events=.. fixed=.. ...;
              the stock-timer rows print KVMRS-PARAMS (kvmrs-params) and the
              stock tests' own lines ("Iteration 2 dirty memory time: 0.2s",
              "Writing to idle memory   : 0.2s").

Exit status 1 if the VM's verdict is FAIL, or any planned test failed, is
missing, or ran the wrong arm.
"""
import argparse
import csv
import json
import os
import re
import statistics
import sys

ARM_LABEL = {"rust": "TDP rust", "c": "TDP c", "off": "TDP off", "shadow": "tdp_mmu=N",
             "stock": "TDP stock"}
MACHINE_LABEL = {
    "amd": "AMD NPT, QEMU TCG -icount shift=0 (1 ns = 1 emulated instruction)",
    "intel": "Intel EPT eptad=0 pml=0, Bochs 2.7 clock sync=none (guest time = instructions / ips)",
}
# the phase a row's table shows, and the seed's name for it
PHASE_METRIC = {"dirty": "Iteration N dirty memory time", "idle": "Writing to idle memory"}
STOCK_METRICS = {  # stock row -> the line it is read from
    "stock-dirty": "Iteration 2 dirty memory time",
    "stock-idle": "Writing to idle memory",
}
KV = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)=(\S+)")
STOCK_LINE = re.compile(r"^\s*(Iteration \d+ dirty memory time|Populate memory time|"
                        r"Writing to idle memory|Reading from idle memory|"
                        r"Writing to populated memory|Reading from populated memory)\s*:\s*"
                        r"([0-9.]+)s")

NOTE_AMD = """\
AMD rows: QEMU -icount shift=0 (one emulated instruction = 1 ns of guest time), so "ms" is
millions of emulated guest instructions spent by the vCPU thread (CLOCK_THREAD_CPUTIME_ID
around KVM_RUN) for one pass writing every page once after the dirty log was cleared: the
guest's stores, the NPT write-protection exits, the fast (or slow) page fault path and the
re-entries. Path length only: cache misses, TLB behaviour, the real cost of atomics, memory
bandwidth and lock contention are invisible, and there is no real concurrency (one guest
CPU; the -v 2 row time-shares it)."""
NOTE_INTEL = """\
Intel rows: Bochs with clock sync=none: guest time = Bochs ticks / ips (200,000,000; the
guest's TSC runs at 200 MHz), one tick per emulated instruction, so 1 ms = 200,000
instructions. Same vCPU-thread CPU time per pass, in the seed's own configuration (EPT,
eptad=0 pml=0, 1 vCPU): "dirty" = a pass after the dirty log was cleared (write-protection
faults: the pass the seed's "Iteration 2 dirty memory time" times), "idle" = a pass after
MGLRU aged the memory (access-tracking faults: the pass of "Writing to idle memory").
The benchmark's main thread sleeps while the vCPU runs, so the vCPU thread has the one
guest CPU to itself; its CPU time is what the L2 guest, the EPT violation exits and KVM's
fault handling (and the 250 Hz timer tick) took, not the aging or dirty-log work of the
main thread. Same limits as above: path length only, one CPU, no contention."""
NOTE_COMMON = """\
The seed measured wall time with 64 vCPUs on a Cascade Lake (eptad=0 pml=0), where mmu_lock
contention dominates; that cannot be reproduced here, only the per-fault path length and the
fast/slow ratio. Ratios are ratios of medians; [min-max] over the repetitions. "d/fault" =
(median rust - median c) / pages written per pass (one fast page fault each), in emulated
instructions."""


def parse_log(path):
    """test name -> what its guest output says"""
    tests = {}
    cur = None
    tsc_mhz = None
    with open(path, "r", errors="replace") as f:
        for raw in f:
            line = raw.replace("\r", "").rstrip("\n")
            m = re.search(r"KVMRS-TEST-BEGIN (\S+) guest_time=", line)
            if m:
                cur = tests.setdefault(m.group(1), {"passes": [], "config": None, "params": None,
                                                    "perf": None, "pass": False, "rc": None,
                                                    "stock": {}})
                continue
            m = re.search(r"KVMRS-TEST-END (\S+) rc=(\d+)", line)
            if m:
                if m.group(1) in tests:
                    tests[m.group(1)]["rc"] = int(m.group(2))
                cur = None
                continue
            m = re.search(r"Refined TSC clocksource calibration: ([0-9.]+) MHz", line)
            if m:
                tsc_mhz = float(m.group(1))
            if cur is None:
                continue
            i = line.find("KVMRS-BENCH ")
            if i >= 0:
                body = line[i + len("KVMRS-BENCH "):]
                kv = dict(KV.findall(body))
                if body.startswith("config "):
                    cur["config"] = kv
                elif body.startswith("result=pass"):
                    cur["pass"] = True
                elif "phase" in kv and "iter" in kv:
                    cur["passes"].append(kv)
                continue
            i = line.find("KVMRS-PERF ")
            if i >= 0:
                cur["perf"] = dict(KV.findall(line[i:]))
                continue
            i = line.find("KVMRS-PARAMS ")
            if i >= 0:
                cur["params"] = dict(KV.findall(line[i:]))
                continue
            m = STOCK_LINE.search(line)
            if m:
                cur["stock"].setdefault(m.group(1), float(m.group(2)))
    return tests, tsc_mhz


def read_plan(path):
    plan = []
    with open(path) as f:
        for line in f:
            if not line.strip() or line.startswith("#"):
                continue
            name, kind, row, arm, rep, args = (line.rstrip("\n").split("\t") + [""] * 6)[:6]
            plan.append({"name": name, "kind": kind, "row": row, "arm": arm, "rep": rep,
                         "args": args})
    return plan


def arm_ok(arm, cfg):
    if cfg is None:
        return False
    if arm == "shadow":
        return cfg.get("tdp_mmu") == "N"
    if arm == "stock":
        return cfg.get("tdp_mmu") == "Y"
    return cfg.get("tdp_mmu") == "Y" and cfg.get("tdp_fast_pf") == arm


def rs_counters(kv):
    """the kvm_rs debugfs counter deltas of a pass line"""
    known = {"iter", "phase", "cpu_ns", "max_cpu_ns", "dirty", "pf_fast", "pf_taken", "pf_fixed",
             "pf_spurious", "pages_2m", "lru_pages"}
    return " ".join(f"{k}={v}" for k, v in kv.items() if k not in known)


def fmt_range(med, lo, hi, unit_div, digits=3):
    return f"{med / unit_div:.{digits}f} [{lo / unit_div:.{digits}f}-{hi / unit_div:.{digits}f}]"


def vendor_of(name):
    """amd or intel: a run's name is the machine, or machine@series."""
    return name.split("@")[0]


def machine_label(name):
    v, _, series = name.partition("@")
    return MACHINE_LABEL[v] + (f"; Linux {series}" if series else "")


class Machine:
    def __init__(self, name, d):
        self.name = name
        self.dir = d
        self.plan = read_plan(os.path.join(d, "plan.tsv"))
        self.tests, tsc = parse_log(os.path.join(d, "guest.log"))
        self.json = None
        jpath = os.path.join(d, "guest.json")
        if os.path.exists(jpath):
            with open(jpath) as f:
                self.json = json.load(f)
        # emulated instructions per ns of guest time
        if vendor_of(name) == "intel":
            self.instr_per_ns = (tsc / 1000.0) if tsc else 0.2
        else:
            self.instr_per_ns = 1.0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--run", action="append", required=True, metavar="MACHINE[@SERIES]=DIR")
    ap.add_argument("--out", required=True)
    ap.add_argument("--no-png", action="store_true")
    a = ap.parse_args()

    machines = []
    for r in a.run:
        name, _, d = r.partition("=")
        if vendor_of(name) not in MACHINE_LABEL or not d:
            print(f"report: --run wants amd=DIR or intel=DIR (or amd@<series>=DIR), not '{r}'",
                  file=sys.stderr)
            return 2
        machines.append(Machine(name, d))

    failures = []
    rows_order = []         # (machine, row)
    arms_order = {}         # machine -> [arm]
    row_args = {}
    timed = {}              # (machine, row, arm, iter, phase) -> [cpu_ns]
    stock = {}              # (machine, row, arm) -> [seconds]
    pages_of = {}           # (machine, row) -> pages written per pass
    counters = {}           # (machine, row, arm) -> [(pf_fast, pf_taken, kvm_rs)] of timed passes
    traced = {}             # (machine, row, arm) -> perf dict + fast faults
    csv_rows = []

    for m in machines:
        jt = {}
        if m.json is None:
            failures.append(f"{m.name}: no guest.json (scripts/vm.sh did not finish?)")
        else:
            jt = {t["name"]: t for t in m.json.get("tests", [])}
            if m.json.get("verdict") != "PASS":
                why = []
                if m.json.get("load_failed"):
                    why.append("the modules did not load")
                if m.json.get("timed_out"):
                    why.append("the VM timed out")
                elif not m.json.get("done"):
                    why.append("the guest stopped without KVMRS-DONE")
                if m.json.get("kernel_reports"):
                    why.append("kernel reports: " + "; ".join(m.json["kernel_reports"][:3]))
                failures.append(f"{m.name}: scripts/vm.sh verdict FAIL"
                                + (f" ({', '.join(why)})" if why else ""))
        arms_order[m.name] = []
        for p in m.plan:
            key_row = (m.name, p["row"])
            if p["kind"] in ("timed", "traced", "stock"):
                if key_row not in rows_order:
                    rows_order.append(key_row)
                    row_args[key_row] = p["args"]
                if p["arm"] not in arms_order[m.name]:
                    arms_order[m.name].append(p["arm"])
            label = f"{m.name}/{p['name']}"
            j = jt.get(p["name"])
            t = m.tests.get(p["name"])
            if m.json is not None:
                if j is None:
                    failures.append(f"{label}: not in guest.json")
                    continue
                if j["result"] != "PASS":
                    failures.append(f"{label}: {j['result']}" + (f" ({j['note']})" if j.get("note") else ""))
                    continue
            elif t is None or t["rc"] != 0:
                failures.append(f"{label}: did not pass (rc={t and t['rc']})")
                continue
            if p["kind"] == "setup":
                continue
            if t is None:
                failures.append(f"{label}: PASS in guest.json but no output in guest.log")
                continue
            wall = j.get("wall_s") if j else None
            guest = j.get("guest_s") if j else None
            base = {"machine": m.name, "kind": p["kind"], "row": p["row"], "arm": p["arm"],
                    "rep": p["rep"], "args": p["args"], "wall_s": wall if wall is not None else "",
                    "guest_s": guest if guest is not None else ""}

            if p["kind"] == "stock":
                cfg = t["params"]
                if not arm_ok(p["arm"], cfg):
                    failures.append(f"{label}: ran tdp_mmu={cfg and cfg.get('tdp_mmu')} "
                                    f"tdp_fast_pf={cfg and cfg.get('tdp_fast_pf')}, planned arm {p['arm']}")
                    continue
                metric = STOCK_METRICS.get(p["row"])
                if metric not in t["stock"]:
                    failures.append(f"{label}: no '{metric}' line")
                    continue
                stock.setdefault((m.name, p["row"], p["arm"]), []).append(t["stock"][metric])
                for k, v in t["stock"].items():
                    csv_rows.append(dict(base, phase=k, stock_s=v, tdp_mmu=cfg.get("tdp_mmu"),
                                         tdp_fast_pf=cfg.get("tdp_fast_pf")))
                continue

            if not t["pass"]:
                failures.append(f"{label}: no 'KVMRS-BENCH result=pass'")
                continue
            cfg = t["config"]
            if not arm_ok(p["arm"], cfg):
                failures.append(f"{label}: ran tdp_mmu={cfg and cfg.get('tdp_mmu')} "
                                f"tdp_fast_pf={cfg and cfg.get('tdp_fast_pf')}, planned arm {p['arm']}")
                continue
            vcpus = int(cfg["vcpus"])
            region = int(cfg["pages"])
            pages_of[key_row] = region    # pages written per pass
            fast_total = 0
            for kv in t["passes"]:
                it, phase = int(kv["iter"]), kv["phase"]
                if phase in ("dirty", "idle"):
                    fast_total += int(kv["pf_fast"])
                csv_rows.append(dict(base, **{
                    "iter": it, "phase": phase, "vcpus": vcpus, "pages": region,
                    "tdp_mmu": cfg.get("tdp_mmu"), "tdp_fast_pf": cfg.get("tdp_fast_pf"),
                    "cpu_ns": kv["cpu_ns"], "max_cpu_ns": kv["max_cpu_ns"],
                    "instructions": round(int(kv["cpu_ns"]) * m.instr_per_ns),
                    "dirty": kv["dirty"], "pf_fast": kv["pf_fast"], "pf_taken": kv["pf_taken"],
                    "pf_fixed": kv["pf_fixed"], "pf_spurious": kv["pf_spurious"],
                    "pages_2m": kv["pages_2m"], "lru_pages": kv.get("lru_pages", ""),
                    "kvm_rs": rs_counters(kv)}))
                if p["kind"] == "timed" and phase in ("dirty", "idle"):
                    timed.setdefault((m.name, p["row"], p["arm"], it, phase), []).append(int(kv["cpu_ns"]))
                    counters.setdefault((m.name, p["row"], p["arm"]), []).append(
                        (int(kv["pf_fast"]), int(kv["pf_taken"]), rs_counters(kv)))
            if p["kind"] == "traced":
                if not t["perf"]:
                    failures.append(f"{label}: no KVMRS-PERF line")
                    continue
                traced[(m.name, p["row"], p["arm"])] = dict(t["perf"], pf_fast=fast_total)
                for r in csv_rows:
                    if (r["machine"], r["kind"], r["row"], r["arm"]) == (m.name, "traced", p["row"], p["arm"]):
                        r.update({"perf_events": t["perf"].get("events", ""),
                                  "perf_fixed": t["perf"].get("fixed", ""),
                                  "perf_spurious": t["perf"].get("spurious", ""),
                                  "perf_other": t["perf"].get("other", "")})

    os.makedirs(a.out, exist_ok=True)
    fields = ["machine", "kind", "row", "arm", "rep", "iter", "phase", "args", "vcpus", "pages",
              "tdp_mmu", "tdp_fast_pf", "cpu_ns", "max_cpu_ns", "instructions", "stock_s", "dirty",
              "pf_fast", "pf_taken", "pf_fixed", "pf_spurious", "pages_2m", "lru_pages", "kvm_rs",
              "perf_events", "perf_fixed", "perf_spurious", "perf_other", "wall_s", "guest_s"]
    res_csv = os.path.join(a.out, "results.csv")
    with open(res_csv, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields, restval="")
        w.writeheader()
        w.writerows(csv_rows)

    ipn = {m.name: m.instr_per_ns for m in machines}
    summary = []
    for (mach, row) in rows_order:
        keys = sorted({(k[3], k[4]) for k in timed if k[:2] == (mach, row)})
        for it, phase in keys:
            for arm in arms_order[mach]:
                v = timed.get((mach, row, arm, it, phase))
                if not v:
                    continue
                med = statistics.median(v)
                pg = pages_of.get((mach, row))
                summary.append({"machine": mach, "row": row, "args": row_args[(mach, row)],
                                "iter": it, "phase": phase, "metric": "vcpu_cpu_ns", "arm": arm,
                                "n": len(v), "median": int(med), "min": min(v), "max": max(v),
                                "spread_pct": f"{(max(v) - min(v)) / med * 100:.3f}",
                                "pages_per_pass": pg or "",
                                "instr_per_page": f"{med * ipn[mach] / pg:.1f}" if pg else ""})
        for arm in arms_order[mach]:
            v = stock.get((mach, row, arm))
            if not v:
                continue
            med = statistics.median(v)
            summary.append({"machine": mach, "row": row, "args": row_args[(mach, row)], "iter": "",
                            "phase": "", "metric": STOCK_METRICS[row] + " (s)", "arm": arm,
                            "n": len(v), "median": med, "min": min(v), "max": max(v),
                            "spread_pct": f"{(max(v) - min(v)) / med * 100:.3f}",
                            "pages_per_pass": "", "instr_per_page": ""})
    sum_csv = os.path.join(a.out, "summary.csv")
    with open(sum_csv, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["machine", "row", "args", "iter", "phase", "metric", "arm",
                                          "n", "median", "min", "max", "spread_pct",
                                          "pages_per_pass", "instr_per_page"])
        w.writeheader()
        w.writerows(summary)

    med = {(s["machine"], s["row"], s["iter"], s["phase"], s["arm"]): s
           for s in summary if s["metric"] == "vcpu_cpu_ns"}

    out = []
    for m in machines:
        out.extend(machine_table(m, rows_order, row_args, arms_order[m.name], med, pages_of,
                                 stock, counters, traced))
    out.append(NOTE_COMMON)
    if failures:
        out.append("")
        out.append("FAILED runs:")
        out.extend("  " + x for x in failures)
    text = "\n".join(out) + "\n"
    with open(os.path.join(a.out, "table.txt"), "w") as f:
        f.write(text)
    print(text)

    png = os.path.join(a.out, "chart.png")
    if not a.no_png and summary:
        try:
            make_png(png, machines, rows_order, row_args, arms_order, med, stock)
        except Exception as e:  # a missing plot must not hide the numbers
            print(f"report: PNG failed: {e}", file=sys.stderr)
            failures.append(f"chart: {e}")
            png = None
    else:
        png = None
    print(f"results: {res_csv}")
    print(f"summary: {sum_csv}")
    print(f"table:   {os.path.join(a.out, 'table.txt')}")
    if png:
        print(f"chart:   {png}")
    return 1 if failures else 0


def machine_table(m, rows_order, row_args, arms, med, pages_of, stock, counters, traced):
    mach = m.name
    rows = [r for (mm, r) in rows_order if mm == mach]
    ipn = m.instr_per_ns
    out = []
    keys = sorted({(k[2], k[3]) for k in med if k[0] == mach})
    ns = sorted({str(s["n"]) for k, s in med.items() if k[0] == mach})
    out.append(f"== {mach}: {machine_label(mach)}")
    if keys:
        unit = "ms = M emulated instructions" if vendor_of(mach) == "amd" else \
            f"ms of emulated time, 1 ms = {round(ipn * 1e3) * 1000:,} instructions " \
            f"(guest TSC {ipn * 1e3:.3f} MHz)"
        out.append(f"vCPU CPU time per pass, {unit} (median [min-max] of {'/'.join(ns)} runs)")

        def ratio(row, it, ph, x, y):
            if (mach, row, it, ph, x) in med and (mach, row, it, ph, y) in med:
                return f"{med[(mach, row, it, ph, x)]['median'] / med[(mach, row, it, ph, y)]['median']:.4f}"
            return "-"

        def dfault(row, it, ph):
            pg = pages_of.get((mach, row))
            if (mach, row, it, ph, "rust") in med and (mach, row, it, ph, "c") in med and pg:
                d = (med[(mach, row, it, ph, "rust")]["median"] - med[(mach, row, it, ph, "c")]["median"]) / pg
                return f"{d * ipn:+.0f}"
            return "-"

        cellw = 26
        lw = max([len(f"{r} ({row_args[(mach, r)]})") for r in rows] + [8])
        hdr = f"{'workload':<{lw}} {'iter':>4} {'phase':<5}  " + "".join(
            f"{ARM_LABEL.get(x, x):<{cellw}}" for x in arms)
        hdr += f"{'rust/c':>8} {'off/rust':>9} {'rust/N':>8} {'d/fault':>8}"
        out.append(hdr)
        out.append("-" * len(hdr))
        for row in rows:
            for it, ph in sorted({(k[2], k[3]) for k in med if k[:2] == (mach, row)}):
                cells = ""
                for arm in arms:
                    s = med.get((mach, row, it, ph, arm))
                    cells += f"{fmt_range(s['median'], s['min'], s['max'], 1e6) if s else '-':<{cellw}}"
                label = f"{row} ({row_args[(mach, row)]})"
                out.append(f"{label:<{lw}} {it:>4} {ph:<5}  {cells}{ratio(row, it, ph, 'rust', 'c'):>8} "
                           f"{ratio(row, it, ph, 'off', 'rust'):>9} {ratio(row, it, ph, 'rust', 'shadow'):>8} "
                           f"{dfault(row, it, ph):>8}")
        out.append("")
        spreads = [float(s["spread_pct"]) for k, s in med.items() if k[0] == mach]
        out.append(f"run-to-run spread (max-min)/median: largest {max(spreads):.3f} %, "
                   f"median {statistics.median(spreads):.3f} % over the {len(spreads)} cells")
        first = [(r, k) for r in rows for k in sorted({(kk[2], kk[3]) for kk in med if kk[:2] == (mach, r)})[:1]]
        out.append("emulated instructions per page written (median, first measured pass): " + ", ".join(
            f"{row}/{ARM_LABEL.get(arm, arm)} {med[(mach, row, k[0], k[1], arm)]['instr_per_page']}"
            for row, k in first for arm in arms if (mach, row, k[0], k[1], arm) in med))
        out.append("")
    srows = [r for r in rows if any((mach, r, arm) in stock for arm in arms)]
    if srows:
        out.append("the stock tests' own timers (seconds of guest time, median [min-max]; one guest CPU:")
        out.append("the main thread busy-waits beside the vCPU thread, so these are about twice the")
        out.append("vCPU's time and move in scheduler steps)")
        cellw = 30
        hdr = f"{'metric':<32}" + "".join(f"{ARM_LABEL.get(x, x):<{cellw}}" for x in arms) + \
            f"{'rust/c':>8} {'off/rust':>9} {'rust/N':>8}"
        out.append(hdr)
        out.append("-" * len(hdr))
        for row in srows:
            cells = ""
            meds = {}
            for arm in arms:
                v = stock.get((mach, row, arm))
                if v:
                    md = statistics.median(v)
                    meds[arm] = md
                    cells += f"{fmt_range(md, min(v), max(v), 1, 4) + f' {(max(v) - min(v)) / md * 100:.1f}%':<{cellw}}"
                else:
                    cells += f"{'-':<{cellw}}"
            r = lambda x, y: f"{meds[x] / meds[y]:.4f}" if x in meds and y in meds else "-"
            out.append(f"{STOCK_METRICS[row]:<32}{cells}{r('rust', 'c'):>8} {r('off', 'rust'):>9} "
                       f"{r('rust', 'shadow'):>8}")
        out.append("")
    crow = [(row, arm) for row in rows for arm in arms if (mach, row, arm) in counters]
    if crow and vendor_of(mach) == "intel":
        out.append("page faults per measured pass, min-max over the passes (vCPU stats pf_fast and")
        out.append("pf_taken; kvm_rs: the module's counters of the arm, fixed or sent to the slow path)")

        def rng(v):
            return f"{min(v)}" if min(v) == max(v) else f"{min(v)}-{max(v)}"
        for row, arm in crow:
            c = counters[(mach, row, arm)]
            keys = sorted({k for x in c for k in dict(KV.findall(x[2]))})
            rs = " ".join(f"{k} {rng([int(dict(KV.findall(x[2])).get(k, 0)) for x in c])}" for k in keys)
            out.append(f"  {row:<10} {ARM_LABEL.get(arm, arm):<10} pf_fast {rng([x[0] for x in c]):>11}  "
                       f"pf_taken {rng([x[1] for x in c]):>11}  {rs}")
        out.append("")
    trows = [(row, arm) for row in rows for arm in arms if (mach, row, arm) in traced]
    if trows:
        out.append("traced runs (kvmrs-perf-count, kvmmmu:fast_page_fault over the whole run; not timed)")
        out.append(f"{'workload':<34} {'arm':<12} {'events':>8} {'fixed':>8} {'spurious':>9} {'other':>6} {'pf_fast':>8}")
        for row, arm in trows:
            tr = traced[(mach, row, arm)]
            out.append(f"{row:<34} {ARM_LABEL.get(arm, arm):<12} {tr.get('events', '-'):>8} "
                       f"{tr.get('fixed', '-'):>8} {tr.get('spurious', '-'):>9} "
                       f"{tr.get('other', '-'):>6} {tr['pf_fast']:>8}")
        out.append("")
    out.append(NOTE_AMD if vendor_of(mach) == "amd" else NOTE_INTEL)
    out.append("")
    return out


def make_png(path, machines, rows_order, row_args, arms_order, med, stock):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colors = {"rust": "#b7410e", "c": "#4a6fa5", "off": "#999999", "shadow": "#5a9e4b",
              "stock": "#4a6fa5"}
    lines = []   # one figure row per machine: [(machine, row)]
    for m in machines:
        panels = [(mm, r) for (mm, r) in rows_order if mm == m.name]
        if panels:
            lines.append(panels)
    ncols = max(len(x) for x in lines)
    fig, axes = plt.subplots(len(lines), ncols, figsize=(4.8 * ncols, 4.6 * len(lines)),
                             squeeze=False)
    for li, panels in enumerate(lines):
        for ci in range(ncols):
            ax = axes[li][ci]
            if ci >= len(panels):
                ax.axis("off")
                continue
            mach, row = panels[ci]
            arms = arms_order[mach]
            keys = sorted({(k[2], k[3]) for k in med if k[:2] == (mach, row)})
            is_stock = not keys
            if is_stock:
                keys = [("", "")]
            width = 0.8 / max(1, len(arms))
            for j, arm in enumerate(arms):
                xs, ys, lo, hi = [], [], [], []
                for k, key in enumerate(keys):
                    if is_stock:
                        v = stock.get((mach, row, arm))
                        if not v:
                            continue
                        md, mn, mx = statistics.median(v) * 1e3, min(v) * 1e3, max(v) * 1e3
                    else:
                        s = med.get((mach, row, key[0], key[1], arm))
                        if not s:
                            continue
                        md, mn, mx = s["median"] / 1e6, s["min"] / 1e6, s["max"] / 1e6
                    xs.append(k + (j - (len(arms) - 1) / 2) * width)
                    ys.append(md)
                    lo.append(md - mn)
                    hi.append(mx - md)
                if not xs:
                    continue
                bars = ax.bar(xs, ys, width, yerr=[lo, hi], capsize=4,
                              color=colors.get(arm, None), label=ARM_LABEL.get(arm, arm))
                for b, y in zip(bars, ys):
                    ax.annotate(f"{y:.1f}", (b.get_x() + b.get_width() / 2, y), ha="center",
                                va="bottom", fontsize=7, xytext=(0, 2), textcoords="offset points")
            ax.set_xticks(range(len(keys)))
            if is_stock:
                ax.set_xticklabels([STOCK_METRICS[row]], fontsize=8)
                ax.set_ylabel(f"{mach}: stock timer (ms of guest time)")
            else:
                ax.set_xticklabels([f"iteration {it} ({ph})" for it, ph in keys], fontsize=8)
                ax.set_ylabel("vCPU CPU time (ms) = M instructions" if vendor_of(mach) == "amd"
                              else "vCPU CPU time (ms, Bochs: 0.2 M instructions)")
            ax.set_title(f"{mach}: {row}\n{row_args[(mach, row)]}", fontsize=9)
            ax.grid(axis="y", alpha=0.3)
            ax.set_ylim(0, ax.get_ylim()[1] * 1.3)	# room for the legend
        axes[li][0].legend(fontsize=8, loc="upper left", ncol=2)
    fig.suptitle("kvm-rs fast page fault: per-pass vCPU CPU time, median, whiskers min-max\n"
                 "AMD: QEMU TCG -icount (emulated NPT); Intel: Bochs (emulated EPT, eptad=0 pml=0): "
                 "path length only", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
