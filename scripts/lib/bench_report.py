"""Aggregates scripts/bench's runs: medians and spread per configuration and workload, ratios to direct
and to HAProxy, the targets of the benchmark issue, out/bench.json, out/bench.png, and the Markdown
table (printed; written into docs/benchmarks.md with the chart unless --quick)."""
import datetime
import json
import os
import platform
import re
import shutil
import statistics
import sys
from pathlib import Path

runs_path, out = Path(sys.argv[1]), Path(sys.argv[2])
quick = "--quick" in sys.argv
TICK_MS = 1000 / os.sysconf("SC_CLK_TCK")

rows = []
latency = {}  # config -> runs of bench/keepalive_latency.py (moving and staying keep-alive requests)
for line in runs_path.read_text().splitlines():
    config, workload, rep, rest = line.split("\t", 3)
    kv = dict(x.split("=", 1) for x in rest.split() if "=" in x)
    if workload == "move-latency":
        latency.setdefault(config, []).append({k: float(val) for k, val in kv.items()})
        continue
    v = {k: float(val) for k, val in kv.items() if re.fullmatch(r"-?[0-9.]+", val)}
    req = v.get("requests", 0)
    dur = v.get("duration_us", 0) / 1e6 or 1
    rows.append({
        "config": config, "workload": workload, "rep": int(rep),
        "requests_per_s": req / dur,
        "mb_per_s": v.get("bytes", 0) / dur / 1e6,
        "p50_ms": v.get("p50_us", 0) / 1e3, "p99_ms": v.get("p99_us", 0) / 1e3, "p999_ms": v.get("p999_us", 0) / 1e3,
        "fe_cpu_ms_per_1k": ((v.get("fe_ticks", 0) * TICK_MS) + v.get("bpf_ns", 0) / 1e6) / req * 1000 if req else None,
        "fe_bpf_ms_per_1k": v.get("bpf_ns", 0) / 1e6 / req * 1000 if req else None,
        "machine_cpu_ms_per_1k": v.get("machine_ticks", 0) * TICK_MS / req * 1000 if req else None,
        "socket_errors": sum(v.get(k, 0) for k in ("connect", "read", "write", "timeout")),
        "non_2xx": v.get("status", 0),
        "connections": v.get("conns", 0),
        # Node 1's batond: all its threads per request, and its busiest thread's share of one core.
        "batond_us_per_req": v.get("batond_ticks", 0) * TICK_MS * 1000 / req if req else None,
        "worker_max_core": v.get("worker_max_ticks", 0) * TICK_MS / (v.get("duration_us", 0) / 1e3)
        if v.get("duration_us") else None,
        # The servers' TCP counters (every node), per 1000 requests: per 1000 connections where each
        # request is a new connection.
        **{f"{k}_per_1k": v[k] / req * 1000 if req and k in v else None for k in ("rto", "retrans", "paws", "rsts")},
    })

METRICS = ["requests_per_s", "mb_per_s", "p50_ms", "p99_ms", "p999_ms", "fe_cpu_ms_per_1k", "fe_bpf_ms_per_1k",
           "machine_cpu_ms_per_1k", "socket_errors", "non_2xx", "rto_per_1k", "retrans_per_1k", "paws_per_1k",
           "rsts_per_1k", "batond_us_per_req", "worker_max_core"]
agg = {}
for r in rows:
    agg.setdefault((r["config"], r["workload"]), []).append(r)
summary = {}
for (config, workload), rs in agg.items():
    s = {"runs": len(rs)}
    for m in METRICS:
        vals = [r[m] for r in rs if r[m] is not None]
        if vals:
            s[m] = {"median": statistics.median(vals), "min": min(vals), "max": max(vals)}
    summary.setdefault(config, {})[workload] = s

def med(config, workload, metric):
    try:
        return summary[config][workload][metric]["median"]
    except KeyError:
        return None

CONFIGS = ["direct", "baton-ebpf", "baton-nfqueue", "haproxy", "nginx-proxy"]
WORKLOADS = [("small-close", "1 KiB, new conn."), ("local-close", "1 KiB local, new conn."),
             ("medium-close", "64 KiB, new conn."),
             ("mb-close", "1 MiB, new conn."), ("large-close", "10 MiB, new conn."), ("small-keepalive", "1 KiB, keep-alive"),
             ("mixed-close", "mixed trace, new conn."),
             ("spread-small-keepalive", "1 KiB over every node, keep-alive"),
             ("spread-medium-keepalive", "64 KiB over every node, keep-alive"),
             ("spread-mixed-keepalive", "mixed trace over every node, keep-alive")]
WORKLOADS = [(w, label) for w, label in WORKLOADS if any(w in summary.get(c, {}) for c in CONFIGS)]

def fmt(x, digits=0):
    return "n/a" if x is None else f"{x:,.{digits}f}"

def ratio(a, b):
    return "n/a" if a is None or b in (None, 0) else f"{a / b:.2f}"

lines = []
when = datetime.date.today().isoformat()
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "unknown")
lines.append(f"Run of {when}, kernel {platform.release()}, {os.cpu_count()} x {cpu}; "
             f"{'quick run' if quick else 'median of ' + str(max(s['runs'] for c in summary.values() for s in c.values())) + ' runs'}.")
lines.append("")
lines.append("| workload | configuration | req/s | MB/s | p50 ms | p99 ms | p99.9 ms | FE CPU ms / 1k req | machine CPU ms / 1k req | req/s vs direct | req/s vs HAProxy | FE CPU vs HAProxy | errors |")
lines.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
def measured():
    """(workload, label, configuration) for every row the run has, in table order."""
    return [(w, label, c) for w, label in WORKLOADS for c in CONFIGS if w in summary.get(c, {})]


for w, label, c in measured():
    s = summary[c][w]
    spread = s["requests_per_s"]
    rps = f"{spread['median']:,.0f} ({spread['min']:,.0f}-{spread['max']:,.0f})"
    errs = int((s.get("socket_errors", {}).get("median", 0) or 0) + (s.get("non_2xx", {}).get("median", 0) or 0))
    lines.append(
        f"| {label} | {c} | {rps} | {fmt(med(c, w, 'mb_per_s'), 1)} | {fmt(med(c, w, 'p50_ms'), 2)} | "
        f"{fmt(med(c, w, 'p99_ms'), 2)} | {fmt(med(c, w, 'p999_ms'), 2)} | {fmt(med(c, w, 'fe_cpu_ms_per_1k'), 1)} | "
        f"{fmt(med(c, w, 'machine_cpu_ms_per_1k'), 1)} | {ratio(med(c, w, 'requests_per_s'), med('direct', w, 'requests_per_s'))} | "
        f"{ratio(med(c, w, 'requests_per_s'), med('haproxy', w, 'requests_per_s'))} | "
        f"{ratio(med(c, w, 'fe_cpu_ms_per_1k'), med('haproxy', w, 'fe_cpu_ms_per_1k'))} | {errs} |")

# Tail latency and what the connections cost the servers' TCP, for every new-connection workload.
lines.append("")
lines.append("Tail latency and the servers' TCP counters (summed over every node, per 1000 requests: per 1000 "
             "connections for new-connection workloads):")
lines.append("")
lines.append("| workload | configuration | p50 ms | p99 ms | p99.9 ms | p99 vs direct | p50 vs direct | p99 / p50 | RTOs | retransmitted segments | PAWS drops | RSTs sent |")
lines.append("|---|---|---|---|---|---|---|---|---|---|---|---|")
for w, label, c in measured():
    lines.append(
        f"| {label} | {c} | {fmt(med(c, w, 'p50_ms'), 2)} | {fmt(med(c, w, 'p99_ms'), 2)} | "
        f"{fmt(med(c, w, 'p999_ms'), 2)} | {ratio(med(c, w, 'p99_ms'), med('direct', w, 'p99_ms'))} | "
        f"{ratio(med(c, w, 'p50_ms'), med('direct', w, 'p50_ms'))} | {ratio(med(c, w, 'p99_ms'), med(c, w, 'p50_ms'))} | "
        f"{fmt(med(c, w, 'rto_per_1k'), 2)} | {fmt(med(c, w, 'retrans_per_1k'), 1)} | "
        f"{fmt(med(c, w, 'paws_per_1k'), 1)} | {fmt(med(c, w, 'rsts_per_1k'), 2)} |")

if latency:
    lines.append("")
    lines.append("Keep-alive requests that change node against those that stay (one client, unloaded, 1 KiB of "
                 "every node's content in pairs, `bench/keepalive_latency.py`; medians of the runs' percentiles):")
    lines.append("")
    lines.append("| configuration | changing node: p50 ms | p99 ms | staying: p50 ms | p99 ms | requests timed | errors |")
    lines.append("|---|---|---|---|---|---|---|")
    for c in CONFIGS:
        if c not in latency:
            continue
        def lat(k):
            return statistics.median(r.get(k, 0) for r in latency[c])
        lines.append(f"| {c} | {lat('move_p50_us') / 1e3:.2f} | {lat('move_p99_us') / 1e3:.2f} | "
                     f"{lat('stay_p50_us') / 1e3:.2f} | {lat('stay_p99_us') / 1e3:.2f} | "
                     f"{lat('move_n') + lat('stay_n'):,.0f} | {lat('errors'):.0f} |")

scaling = [(c, w) for c in summary for w in summary[c] if c.startswith("scale-") or c == "handoff-rate"]
if scaling:
    lines.append("")
    lines.append("Scaling (baton-ebpf, client to node 1):")
    lines.append("")
    lines.append("| run | req/s | MB/s | p99 ms | FE CPU ms / 1k req |")
    lines.append("|---|---|---|---|---|")
    for c, w in sorted(scaling, key=lambda cw: (cw[0], int(re.sub(r"\D", "", cw[1]) or 0))):
        name = f"{c.replace('scale-', '').replace('-', ' ')}, mixed trace" if c.startswith("scale-") else f"handoff rate, {w[1:]} connections, 1 KiB"
        lines.append(f"| {name} | {fmt(med(c, w, 'requests_per_s'))} | {fmt(med(c, w, 'mb_per_s'), 1)} | "
                     f"{fmt(med(c, w, 'p99_ms'), 2)} | {fmt(med(c, w, 'fe_cpu_ms_per_1k'), 1)} |")

workers = sorted(c for c in summary if "-workers-" in c)
if workers:
    lines.append("")
    lines.append("Workers (client to node 1, 50 connections, a new connection per request; FE CPU: the front "
                 "end's every process, batond's threads included):")
    lines.append("")
    lines.append("| workload | datapath | workers | req/s | p99 ms | FE CPU ms / 1k req | machine CPU ms / 1k req | batond us / req | busiest worker thread, share of a core | req/s vs 1 worker | errors |")
    lines.append("|---|---|---|---|---|---|---|---|---|---|---|")
    for w, label in (("small-close", "1 KiB handed off"), ("local-close", "1 KiB local")):
        for c in workers:
            if w not in summary[c]:
                continue
            s = summary[c][w]
            errs = int((s.get("socket_errors", {}).get("median", 0) or 0) + (s.get("non_2xx", {}).get("median", 0) or 0))
            dp, _, n = c.split("-")
            lines.append(f"| {label} | {dp} | {n} | {fmt(med(c, w, 'requests_per_s'))} | "
                         f"{fmt(med(c, w, 'p99_ms'), 2)} | {fmt(med(c, w, 'fe_cpu_ms_per_1k'), 1)} | "
                         f"{fmt(med(c, w, 'machine_cpu_ms_per_1k'), 1)} | {fmt(med(c, w, 'batond_us_per_req'), 1)} | "
                         f"{fmt(med(c, w, 'worker_max_core'), 2)} | "
                         f"{ratio(med(c, w, 'requests_per_s'), med(dp + '-workers-1', w, 'requests_per_s'))} | {errs} |")

# The benchmark issue's targets, read off this run.
targets = []
b, h = med("baton-ebpf", "large-close", "fe_cpu_ms_per_1k"), med("haproxy", "large-close", "fe_cpu_ms_per_1k")
if b and h:
    targets.append(f"10 MiB responses, front-end CPU per request: HAProxy / baton-ebpf = {h / b:.1f}x "
                   f"(target >= 10x: {'met' if h / b >= 10 else 'missed'})")
b, h = med("baton-ebpf", "small-close", "requests_per_s"), med("haproxy", "small-close", "requests_per_s")
if b and h:
    targets.append(f"1 KiB, new connection per request: baton-ebpf / HAProxy req/s = {b / h:.2f} "
                   f"(target >= 1: {'met' if b >= h else 'missed'}; stretch: >= 0.6 of direct: "
                   f"{ratio(b, med('direct', 'small-close', 'requests_per_s'))})")
b, h = med("baton-ebpf", "small-close", "fe_cpu_ms_per_1k"), med("haproxy", "small-close", "fe_cpu_ms_per_1k")
if b and h:
    targets.append(f"1 KiB, new connection per request: front-end CPU per request, baton-ebpf / HAProxy = {b / h:.2f} "
                   f"(target <= 0.5: {'met' if b / h <= 0.5 else 'missed'})")
b, d = med("baton-ebpf", "local-close", "requests_per_s"), med("direct", "local-close", "requests_per_s")
if b and d:
    targets.append(f"1 KiB of the front end's own content: baton-ebpf / direct req/s = {b / d:.2f} "
                   f"(target >= 0.9: {'met' if b / d >= 0.9 else 'missed'})")
b, d = med("baton-ebpf", "small-close", "p99_ms"), med("direct", "small-close", "p99_ms")
if b is not None and d is not None:
    added = (b - d) * 1000
    targets.append(f"1 KiB, new connection per request, 50 connections: p99 added over direct = {added:.0f} us "
                   f"(target <= 1 ms: {'met' if added <= 1000 else 'missed'}; stretch 200 us)")
for w, label in WORKLOADS:
    if not w.endswith("-close"):
        continue
    b, d = med("baton-ebpf", w, "p99_ms"), med("direct", w, "p99_ms")
    b50, d50 = med("baton-ebpf", w, "p50_ms"), med("direct", w, "p50_ms")
    if b is not None and d and b50 and d50:
        targets.append(f"{label}: baton-ebpf p99 / direct p99 = {b / d:.2f} (target <= 1.5: "
                       f"{'met' if b / d <= 1.5 else 'missed'}); p50 ratio {b50 / d50:.2f}, tail shape p99/p50 "
                       f"{b / b50:.2f} handed off against {d / d50:.2f} direct")
    b, d = med("baton-ebpf", w, "rto_per_1k"), med("direct", w, "rto_per_1k")
    if b is not None and d is not None:
        targets.append(f"{label}: RTOs per 1000 connections, handed off {b:.2f}, direct {d:.2f} "
                       f"(target: no higher: {'met' if b <= d + 0.5 else 'missed'})")
for dp in ("ebpf", "nfqueue"):
    per_req, busiest = med(f"{dp}-workers-1", "small-close", "batond_us_per_req"), med(f"{dp}-workers-1", "small-close", "worker_max_core")
    if per_req and busiest is not None:
        targets.append(f"baton-{dp}, one worker: {per_req:.0f} us of batond CPU per handoff (the front end's), at most "
                       f"{1e6 / per_req:,.0f} handoffs/s per worker with a core of its own; in this run its thread was "
                       f"busy {busiest:.0%} of the time: {'it' if busiest > 0.9 else 'not it but the rest of the machine'} "
                       f"bounds the rate here")
    one, two = med(f"{dp}-workers-1", "small-close", "requests_per_s"), med(f"{dp}-workers-2", "small-close", "requests_per_s")
    if one and two:
        targets.append(f"baton-{dp}, 1 KiB handed off, 2 workers / 1 worker req/s = {two / one:.2f} (target: the rate "
                       f"grows with workers: {'met' if two / one >= 1.1 else 'missed'})")
if targets:
    lines.append("")
    lines.extend(f"- {t}" for t in targets)
table = "\n".join(lines)
print()
print(table)

(out.parent / "bench.json").write_text(json.dumps({"date": when, "kernel": platform.release(), "cpu": cpu,
                                                    "quick": quick, "summary": summary, "runs": rows}, indent=2) + "\n")

# Chart: throughput and front-end CPU per request, per workload and configuration.
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
fig, axes = plt.subplots(1, 2, figsize=(13, 4.8))
width = 0.16
for i, c in enumerate(CONFIGS):
    xs = [j + (i - 2) * width for j in range(len(WORKLOADS))]
    axes[0].bar(xs, [med(c, w, "requests_per_s") or 0 for w, _ in WORKLOADS], width, label=c)
    axes[1].bar(xs, [med(c, w, "fe_cpu_ms_per_1k") or 0 for w, _ in WORKLOADS], width, label=c)
for ax, title in ((axes[0], "requests/s (higher is better)"), (axes[1], "front-end CPU ms per 1000 requests (lower is better)")):
    ax.set_xticks(range(len(WORKLOADS)))
    ax.set_xticklabels([label for _, label in WORKLOADS], rotation=20, ha="right", fontsize=8)
    ax.set_title(title, fontsize=10)
    ax.set_yscale("log")
axes[0].legend(fontsize=8)
fig.tight_layout()
fig.savefig(out.parent / "bench.png", dpi=110)
print(f"\nwritten: {out.parent / 'bench.json'}, {out.parent / 'bench.png'}")

if not quick:
    docs = Path("docs/benchmarks.md")
    text = docs.read_text()
    shutil.copy(out.parent / "bench.png", "docs/bench.png")
    section = ("<!-- bench:start (written by scripts/bench) -->\n" + table +
               "\n\n![throughput and front-end CPU per request](bench.png)\n<!-- bench:end -->")
    text = re.sub(r"<!-- bench:start.*?<!-- bench:end -->", lambda _: section, text, flags=re.S)
    docs.write_text(text)
    print(f"updated {docs} and docs/bench.png")

# A run in which a configuration served nothing is broken, not slow: say so (CI runs --quick for this).
empty = [f"{c}/{w}" for c in summary for w in summary[c] if not med(c, w, "requests_per_s")]
if empty:
    print("bench: no requests completed for " + ", ".join(empty), file=sys.stderr)
    sys.exit(1)
