"""Turns the demo's raw results (curl checks, wrk output, batonctl status, access logs) into the printed
report and out/demo-report.json."""
import json
import re
import sys
from pathlib import Path

work, nodes, out_path = Path(sys.argv[1]), sys.argv[2].split(), Path(sys.argv[3])

checks = []
for line in (work / "curl.tsv").read_text().splitlines():
    path, size, code, body, holders, served = line.split("\t")
    checks.append({"path": path, "bytes": int(size), "status": int(code), "body": body,
                   "holders": [int(h) for h in holders.split(",")],
                   "served_by": int(served) if served else None})

wrk_text = (work / "wrk.out").read_text()
m = re.search(r"BATON_WRK (.*)", wrk_text)
wrk = {k: int(v) for k, v in (kv.split("=") for kv in m.group(1).split())} if m else {}
rps = re.search(r"Requests/sec:\s+([\d.]+)", wrk_text)
lat = {p: v for p, v in re.findall(r"^\s+(50|90|99)%\s+(\S+)", wrk_text, re.M)}

per_node = {}
for n in nodes:
    before = json.loads((work / f"before-{n}.json").read_text())
    after = json.loads((work / f"after-{n}.json").read_text())
    delta = lambda role, key: after[role][key] - before[role][key]
    requests = 0
    body_bytes = 0
    non_2xx = 0
    for line in (work / f"load-log-{n}").read_text().splitlines():
        fields = line.split()
        status, size = int(fields[-2]), int(fields[-1])
        requests += 1
        body_bytes += size
        non_2xx += not 200 <= status < 300
    per_node[n] = {
        "requests_served": requests,
        "response_bytes": body_bytes,
        "non_2xx": non_2xx,
        "as_front_end": {"served_locally": delta("frontend", "served_locally"),
                         "handed_off": delta("frontend", "handed_off"),
                         "handoff_refused": delta("frontend", "handoff_refused"),
                         "handoff_timeouts": delta("frontend", "handoff_timeouts")},
        "as_back_end": {"handoffs_accepted": delta("backend", "handoffs_accepted")},
        "live_flows_after": after["live_flows"],
    }

errors = {k: wrk.get(k, 0) for k in ("connect", "read", "write", "timeout", "status")}
bad_bodies = [c["path"] for c in checks if c["body"] != "ok" or c["status"] != 200]
wrong_node = [c["path"] for c in checks if c["served_by"] not in c["holders"]]
report = {
    "correctness": {"files": len(checks), "byte_exact": len(checks) - len(bad_bodies), "failures": bad_bodies,
                    "served_by_non_holder": wrong_node, "checks": checks},
    "load": {"requests": wrk.get("requests", 0), "bytes": wrk.get("bytes", 0),
             "requests_per_s": float(rps.group(1)) if rps else 0.0, "latency": lat, "errors": errors},
    "nodes": per_node,
}
out_path.write_text(json.dumps(report, indent=2) + "\n")

print()
print("== Baton demo report ==")
print(f"correctness: {report['correctness']['byte_exact']}/{len(checks)} files byte-exact through node 1")
for c in checks:
    how = "local" if c["served_by"] == 1 else f"handed off to node {c['served_by']}"
    print(f"  {c['path']:<22} {c['bytes']:>10} B  {c['status']}  {c['body']:<8} {how}")
print()
print(f"load: {report['load']['requests']} requests, {report['load']['bytes'] / 1e6:.1f} MB, "
      f"{report['load']['requests_per_s']:.0f} req/s, latency p50 {lat.get('50', '?')} p99 {lat.get('99', '?')}")
print("  socket errors: " + ", ".join(f"{k} {v}" for k, v in errors.items()))
print()
print(f"{'node':<6}{'served':>8}{'MB':>9}{'non-2xx':>9}{'fe local':>10}{'fe handoff':>12}{'be accepted':>13}{'live after':>12}")
for n, s in per_node.items():
    print(f"{n:<6}{s['requests_served']:>8}{s['response_bytes'] / 1e6:>9.1f}{s['non_2xx']:>9}"
          f"{s['as_front_end']['served_locally']:>10}{s['as_front_end']['handed_off']:>12}"
          f"{s['as_back_end']['handoffs_accepted']:>13}{s['live_flows_after']:>12}")
print()
print(f"report written to {out_path}")
ok = not bad_bodies and not wrong_node and not any(errors.values())
print("result: " + ("OK" if ok else "PROBLEMS (see above)"))
sys.exit(0 if ok else 1)
