"""The dispatch benchmark's report (bench/dispatch.sh): one row per policy from out/bench-dispatch/runs.tsv,
ratios against round robin measured in the same run, a chart, results.json, and (with docs = 1) the
table and chart put between the markers in docs/dispatch.md and docs/benchmarks.md."""
import datetime
import json
import os
import pathlib
import platform
import shutil
import sys

out = pathlib.Path(sys.argv[1])
files, file_kb, memory_mb, read_mbps = (int(a) for a in sys.argv[2:6])
alpha = float(sys.argv[6])
warmup, seconds, docs = int(sys.argv[7]), int(sys.argv[8]), sys.argv[9] == "1"

rows = []
for line in (out / "runs.tsv").read_text().splitlines():
    policy, *fields = line.split("\t")
    kv = {}
    for f in fields:
        for pair in f.split():
            if "=" in pair:  # the line's "BATON_WRK" tag has none
                k, v = pair.split("=")
                kv[k] = int(v)
    secs = kv["duration_us"] / 1e6
    served = [kv[f"n{n}_requests"] for n in (1, 2, 3)]
    disk = [kv[f"n{n}_disk"] for n in (1, 2, 3)]
    total_served = sum(served) or 1
    rows.append({
        "policy": policy,
        "requests_per_s": kv["requests"] / secs,
        "p50_ms": kv["p50_us"] / 1e3,
        "p99_ms": kv["p99_us"] / 1e3,
        "errors": sum(kv[k] for k in ("connect", "read", "write", "timeout", "status")),
        "hit_rate": max(0.0, 1 - sum(disk) / (total_served * file_kb * 1024)),
        "disk_kib_per_request": sum(disk) / 1024 / total_served,
        "share": [s / total_served for s in served],
        "disk_mib": [d / 2**20 for d in disk],
    })

base = next((r for r in rows if r["policy"] == "round-robin"), None)
lines = [
    f"Run of {datetime.date.today().isoformat()}, kernel {platform.release()}, {os.cpu_count()} CPUs: "
    f"{files} files x {file_kb} KiB ({files * file_kb // 1024} MiB) on every node, page cache at most "
    f"{memory_mb} MiB per node (memory cgroup), disk reads {read_mbps} MiB/s per node (blkio), Zipf "
    f"alpha {alpha}, a new connection per request through node 1 (wrk, 32 connections); {warmup} s warm-up, "
    f"then {seconds} s measured, each policy on a fresh cluster with cold caches.",
    "",
    "| policy | req/s | vs round robin | p50 ms | p99 ms | cache hit rate | disk KiB / request | "
    "requests served by node 1 / 2 / 3 | errors |",
    "|---|---|---|---|---|---|---|---|---|",
]
for r in rows:
    ratio = f"{r['requests_per_s'] / base['requests_per_s']:.2f}" if base and base["requests_per_s"] else "n/a"
    share = " / ".join(f"{s:.0%}" for s in r["share"])
    lines.append(
        f"| {r['policy']} | {r['requests_per_s']:,.0f} | {ratio} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | "
        f"{r['hit_rate']:.1%} | {r['disk_kib_per_request']:.1f} | {share} | {r['errors']} |")
table = "\n".join(lines)
print(table)
(out / "results.json").write_text(json.dumps({"rows": rows, "table": table}, indent=2))

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.6))
names = [r["policy"] for r in rows]
a.bar(names, [r["requests_per_s"] for r in rows], color="#4c72b0")
a.set_title("requests/s (higher is better)")
b.bar(names, [100 * r["hit_rate"] for r in rows], color="#55a868")
b.set_title("cluster cache hit rate, %")
b.set_ylim(0, 100)
for ax in (a, b):
    ax.tick_params(axis="x", rotation=20)
fig.tight_layout()
fig.savefig(out / "dispatch.png", dpi=110)
print(f"\nwritten: {out / 'results.json'}, {out / 'dispatch.png'}")

if docs:
    shutil.copy(out / "dispatch.png", "docs/dispatch.png")
    block = f"<!-- dispatch-bench:start -->\n{table}\n\n![requests/s and cache hit rate by policy](dispatch.png)\n<!-- dispatch-bench:end -->"
    for doc in ("docs/dispatch.md", "docs/benchmarks.md"):
        text = pathlib.Path(doc).read_text()
        start, end = text.find("<!-- dispatch-bench:start -->"), text.find("<!-- dispatch-bench:end -->")
        if start < 0 or end < 0:
            sys.exit(f"{doc}: no dispatch-bench markers")
        text = text[:start] + block + text[end + len("<!-- dispatch-bench:end -->"):]
        pathlib.Path(doc).write_text(text)
        print(f"updated {doc}")
