#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-only
"""kvm-rs `make bench` report: parse the guest serial log of scripts/bench.sh,
write results.csv / summary.csv / table.txt / chart.png, print the table.

    tools/bench/report.py --log guest.log --plan plan.tsv --out DIR [--no-png]

plan.tsv (written by scripts/bench.sh), one test per line, tab separated:
    name  kind  row  arm  rep  args
kind: timed | traced | setup (warm-up, module reload: must pass, not reported)

The guest output of every test sits between
    KVMRS-TEST-BEGIN <name> guest_time=..   and   KVMRS-TEST-END <name> rc=N ..
and the benchmark prints (tools/selftests/fast_pf_bench.c)
    KVMRS-BENCH config vcpus=.. pages=.. tdp_mmu=Y tdp_fast_pf=rust ...
    KVMRS-BENCH iter=2 phase=dirty cpu_ns=.. pf_fast=.. ...
    KVMRS-BENCH result=pass
kvmrs-perf-count prints KVMRS-PERF events=.. fixed=.. spurious=.. other=..

Exit status 1 if any planned test failed, is missing, or ran the wrong arm.
"""
import argparse
import csv
import os
import re
import statistics
import sys

ARM_LABEL = {"rust": "TDP rust", "c": "TDP c", "off": "TDP off", "shadow": "tdp_mmu=N",
             "stock": "TDP stock"}
KV = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)=(\S+)")

NOTE = """\
What these numbers are: QEMU -icount shift=0 (one emulated instruction = 1 ns of guest
time), so "ms" is millions of emulated guest instructions spent by the vCPU thread
(CLOCK_THREAD_CPUTIME_ID around KVM_RUN) for one pass writing every page once after
the dirty log was cleared: the guest's stores, the NPT write-protection exits, the
fast (or slow) page fault path and the re-entries. It measures path length only:
cache misses, TLB behaviour, the real cost of atomics (lock cmpxchg costs what a
mov costs here), memory bandwidth and lock contention are invisible, and there is
no real concurrency (one guest CPU; the -v 2 row time-shares it). The seed measured
wall time with 64 vCPUs on Intel EPT (eptad=0, pml=0), where mmu_lock contention
dominates; that effect cannot be reproduced here, only the per-fault path length
and the fast/slow ratio. Repeat runs in one boot agree to about 0.01 %, with rare
one-sided outliers up to 0.7 %: differences above about 1 % are real.
Ratios are ratios of medians. "d/fault" = (median rust - median c) / pages dirtied
per pass (one fast page fault each), in instructions."""


def parse_log(path):
    tests = {}
    cur = None
    with open(path, "r", errors="replace") as f:
        for raw in f:
            line = raw.replace("\r", "").rstrip("\n")
            m = re.search(r"KVMRS-TEST-BEGIN (\S+) guest_time=", line)
            if m:
                cur = tests.setdefault(m.group(1), {"iters": {}, "vcpu": [], "config": None,
                                                    "perf": None, "pass": False, "rc": None})
                continue
            m = re.search(r"KVMRS-TEST-END (\S+) rc=(\d+)", line)
            if m:
                if m.group(1) in tests:
                    tests[m.group(1)]["rc"] = int(m.group(2))
                cur = None
                continue
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
                    cur["iters"][int(kv["iter"])] = kv
                elif "vcpu" in kv and "iter" in kv:
                    cur["vcpu"].append(kv)
                continue
            i = line.find("KVMRS-PERF ")
            if i >= 0:
                cur["perf"] = dict(KV.findall(line[i:]))
    return tests


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
    return cfg.get("tdp_mmu") == "Y" and cfg.get("tdp_fast_pf") == arm


def ms(ns):
    return ns / 1e6


def fmt_cell(s):
    if not s:
        return "-"
    return f"{ms(s['median_ns']):.3f} [{ms(s['min_ns']):.3f}-{ms(s['max_ns']):.3f}]"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--log", required=True)
    ap.add_argument("--plan", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--no-png", action="store_true")
    a = ap.parse_args()

    tests = parse_log(a.log)
    plan = read_plan(a.plan)
    failures = []
    rows_order, arms_order = [], []
    row_args = {}
    timed = {}      # (row, arm, iter) -> [cpu_ns]
    pages_of = {}   # row -> pages written per pass (all vCPUs)
    traced = {}     # (row, arm) -> perf dict + fast faults
    csv_rows = []

    for p in plan:
        t = tests.get(p["name"])
        if p["kind"] in ("timed", "traced"):
            if p["row"] not in rows_order:
                rows_order.append(p["row"])
                row_args[p["row"]] = p["args"]
            if p["arm"] not in arms_order:
                arms_order.append(p["arm"])
        if t is None:
            failures.append(f"{p['name']}: did not run (no KVMRS-TEST-BEGIN)")
            continue
        if t["rc"] is None:
            failures.append(f"{p['name']}: no KVMRS-TEST-END (crashed or timed out)")
            continue
        if t["rc"] != 0:
            failures.append(f"{p['name']}: rc={t['rc']}")
            continue
        if p["kind"] == "setup":
            continue
        if not t["pass"]:
            failures.append(f"{p['name']}: no 'KVMRS-BENCH result=pass'")
            continue
        if not arm_ok(p["arm"], t["config"]):
            failures.append(f"{p['name']}: ran tdp_mmu={t['config'] and t['config'].get('tdp_mmu')} "
                            f"tdp_fast_pf={t['config'] and t['config'].get('tdp_fast_pf')}, "
                            f"planned arm {p['arm']}")
            continue
        cfg = t["config"]
        vcpus = int(cfg["vcpus"])
        region = int(cfg["pages"])
        pages_of[p["row"]] = region    # pages dirtied (and faulted) per pass
        fast_total = 0
        for it, kv in sorted(t["iters"].items()):
            if kv["phase"] == "dirty":
                fast_total += int(kv["pf_fast"])
            csv_rows.append({
                "kind": p["kind"], "row": p["row"], "arm": p["arm"], "rep": p["rep"],
                "iter": it, "phase": kv["phase"], "args": p["args"], "vcpus": vcpus, "pages": region,
                "tdp_mmu": cfg.get("tdp_mmu"), "tdp_fast_pf": cfg.get("tdp_fast_pf"),
                "cpu_ns": kv["cpu_ns"], "max_cpu_ns": kv["max_cpu_ns"],
                "dirty": kv["dirty"], "pf_fast": kv["pf_fast"], "pf_taken": kv["pf_taken"],
                "pf_fixed": kv["pf_fixed"], "pf_spurious": kv["pf_spurious"],
                "pages_2m": kv["pages_2m"],
                "perf_events": "", "perf_fixed": "", "perf_spurious": "", "perf_other": "",
            })
            if p["kind"] == "timed" and kv["phase"] == "dirty":
                timed.setdefault((p["row"], p["arm"], it), []).append(int(kv["cpu_ns"]))
        if p["kind"] == "traced":
            if not t["perf"]:
                failures.append(f"{p['name']}: no KVMRS-PERF line")
                continue
            traced[(p["row"], p["arm"])] = dict(t["perf"], pf_fast=fast_total)
            for r in csv_rows:
                if r["kind"] == "traced" and r["row"] == p["row"] and r["arm"] == p["arm"]:
                    r.update({"perf_events": t["perf"].get("events", ""),
                              "perf_fixed": t["perf"].get("fixed", ""),
                              "perf_spurious": t["perf"].get("spurious", ""),
                              "perf_other": t["perf"].get("other", "")})

    os.makedirs(a.out, exist_ok=True)
    fields = ["kind", "row", "arm", "rep", "iter", "phase", "args", "vcpus", "pages", "tdp_mmu",
              "tdp_fast_pf", "cpu_ns", "max_cpu_ns", "dirty", "pf_fast", "pf_taken", "pf_fixed",
              "pf_spurious", "pages_2m", "perf_events", "perf_fixed", "perf_spurious", "perf_other"]
    res_csv = os.path.join(a.out, "results.csv")
    with open(res_csv, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        w.writerows(csv_rows)

    iters = sorted({k[2] for k in timed})
    summary = []
    for row in rows_order:
        for it in iters:
            for arm in arms_order:
                v = timed.get((row, arm, it))
                if not v:
                    continue
                med = statistics.median(v)
                summary.append({"row": row, "args": row_args[row], "iter": it, "arm": arm,
                                "n": len(v), "median_ns": int(med), "min_ns": min(v),
                                "max_ns": max(v),
                                "spread_pct": f"{(max(v) - min(v)) / med * 100:.3f}",
                                "pages_per_pass": pages_of.get(row, ""),
                                "ns_per_page": f"{med / pages_of[row]:.1f}" if pages_of.get(row) else ""})
    sum_csv = os.path.join(a.out, "summary.csv")
    with open(sum_csv, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["row", "args", "iter", "arm", "n", "median_ns", "min_ns",
                                          "max_ns", "spread_pct", "pages_per_pass", "ns_per_page"])
        w.writeheader()
        w.writerows(summary)

    med = {(s["row"], s["iter"], s["arm"]): s for s in summary}

    def ratio(row, it, x, y):
        if (row, it, x) in med and (row, it, y) in med:
            return f"{med[(row, it, x)]['median_ns'] / med[(row, it, y)]['median_ns']:.4f}"
        return "-"

    def dfault(row, it):
        if (row, it, "rust") in med and (row, it, "c") in med and pages_of.get(row):
            d = (med[(row, it, "rust")]["median_ns"] - med[(row, it, "c")]["median_ns"]) / pages_of[row]
            return f"{d:+.0f}"
        return "-"

    out = []
    out.append("vCPU CPU time per dirty pass, ms = M emulated instructions under icount "
               "(median [min-max] of %s runs)" % "/".join(sorted({str(s['n']) for s in summary}) or ["0"]))
    cellw = 26
    lw = max([len(f"{r} ({row_args[r]})") for r in rows_order] + [8])
    hdr = f"{'workload':<{lw}} {'iter':>4}  " + "".join(f"{ARM_LABEL.get(x, x):<{cellw}}" for x in arms_order)
    hdr += f"{'rust/c':>8} {'off/rust':>9} {'rust/N':>8} {'d/fault':>8}"
    out.append(hdr)
    out.append("-" * len(hdr))
    for row in rows_order:
        for it in iters:
            cells = ""
            for arm in arms_order:
                s = med.get((row, it, arm))
                cells += f"{fmt_cell(s):<{cellw}}"
            label = f"{row} ({row_args[row]})"
            out.append(f"{label:<{lw}} {it:>4}  {cells}{ratio(row, it, 'rust', 'c'):>8} "
                       f"{ratio(row, it, 'off', 'rust'):>9} {ratio(row, it, 'rust', 'shadow'):>8} "
                       f"{dfault(row, it):>8}")
    out.append("")
    if summary:
        out.append("instructions per dirtied page (median, iteration %d): " % iters[0] + ", ".join(
            f"{row}/{ARM_LABEL.get(arm, arm)} {med[(row, iters[0], arm)]['ns_per_page']}"
            for row in rows_order for arm in arms_order if (row, iters[0], arm) in med))
        out.append("")
    if traced:
        out.append("traced runs (kvmrs-perf-count, kvmmmu:fast_page_fault over the whole run; not timed)")
        out.append(f"{'workload':<34} {'arm':<12} {'events':>8} {'fixed':>8} {'spurious':>9} {'other':>6} {'pf_fast':>8}")
        for row in rows_order:
            for arm in arms_order:
                tr = traced.get((row, arm))
                if tr:
                    out.append(f"{row:<34} {ARM_LABEL.get(arm, arm):<12} {tr.get('events', '-'):>8} "
                               f"{tr.get('fixed', '-'):>8} {tr.get('spurious', '-'):>9} "
                               f"{tr.get('other', '-'):>6} {tr['pf_fast']:>8}")
        out.append("")
    out.append(NOTE)
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
            make_png(png, rows_order, row_args, iters, arms_order, med)
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


def make_png(path, rows, row_args, iters, arms, med):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colors = {"rust": "#b7410e", "c": "#4a6fa5", "off": "#999999", "shadow": "#5a9e4b",
              "stock": "#4a6fa5"}
    fig, axes = plt.subplots(1, len(rows), figsize=(4.8 * len(rows), 4.6), squeeze=False)
    width = 0.8 / max(1, len(arms))
    for ax, row in zip(axes[0], rows):
        for j, arm in enumerate(arms):
            xs, ys, lo, hi = [], [], [], []
            for k, it in enumerate(iters):
                s = med.get((row, it, arm))
                if not s:
                    continue
                xs.append(k + (j - (len(arms) - 1) / 2) * width)
                ys.append(ms(s["median_ns"]))
                lo.append(ms(s["median_ns"] - s["min_ns"]))
                hi.append(ms(s["max_ns"] - s["median_ns"]))
            if not xs:
                continue
            bars = ax.bar(xs, ys, width, yerr=[lo, hi], capsize=4,
                          color=colors.get(arm, None), label=ARM_LABEL.get(arm, arm))
            for b, y in zip(bars, ys):
                ax.annotate(f"{y:.2f}", (b.get_x() + b.get_width() / 2, y), ha="center",
                            va="bottom", fontsize=7, xytext=(0, 2), textcoords="offset points")
        ax.set_xticks(range(len(iters)))
        ax.set_xticklabels([f"iteration {it}" for it in iters])
        ax.set_title(f"{row}\n{row_args[row]}", fontsize=9)
        ax.set_ylabel("vCPU CPU time (ms) = M instructions (icount)")
        ax.grid(axis="y", alpha=0.3)
    axes[0][0].legend(fontsize=8, loc="lower left")
    fig.suptitle("kvm-rs fast page fault: vCPU CPU time per dirty pass, median, whiskers min-max\n"
                 "QEMU TCG -icount shift=0 (1 ns = 1 instruction), emulated AMD NPT: "
                 "path length only", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
