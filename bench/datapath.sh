#!/usr/bin/env bash
# Datapath benchmark (not a test): the eBPF datapath against the NFQUEUE one, measured in the same run.
#   1. per packet: the tc programs (BPF_PROG_TEST_RUN, timed by the kernel), the core/ rewrite alone, and
#      the whole NFQUEUE round trip a back-end reply takes in user space;
#   2. end to end on the testbed: requests/s with a new connection (a handoff) per request, and the bulk
#      throughput of one handed-off 50 MB download, for each datapath.
# Prints a table with ratios and writes out/bench-datapath.json. The machine is shared and noisy: read
# the ratios, not the absolute numbers; each figure is the median of several runs.
#   bench/datapath.sh [--seconds S] [--repeat N]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=8 repeat=3
while [ $# -gt 0 ]; do
  case $1 in
    --seconds) seconds=$2; shift 2 ;;
    --repeat) repeat=$2; shift 2 ;;
    *) echo "usage: bench/datapath.sh [--seconds S] [--repeat N]" >&2; exit 2 ;;
  esac
done
./scripts/setup
./scripts/build
out=out/bench-datapath
mkdir -p "$out"
rm -f "$out"/*.txt

cleanup() {
  ip netns del bbench-a 2>/dev/null || true
  ip netns del bbench-b 2>/dev/null || true
  ./scripts/testbed down >/dev/null 2>&1 || true
}
trap cleanup EXIT

echo "bench: per-packet cost"
ip netns add bbench-a
ip netns add bbench-b
ip link add eth0 netns bbench-a type veth peer name eth0 netns bbench-b
ip -n bbench-a addr add 10.214.0.1/24 dev eth0
ip -n bbench-b addr add 10.214.0.2/24 dev eth0
ip -n bbench-a link set lo up
ip -n bbench-a link set eth0 up
ip -n bbench-b link set eth0 up
ip netns exec bbench-b iptables -w -t raw -A PREROUTING -j DROP  # a cheap sink for the rewritten packets
BATON_BENCH_ADDR=10.214.0.1 BATON_BENCH_PEER=10.214.0.2 \
  nsenter --net=/run/netns/bbench-a build/bench/baton_packet_bench > "$out/packet.jsonl"
ip netns del bbench-a
ip netns del bbench-b

for dp in ebpf nfqueue; do
  echo "bench: end to end, $dp datapath"
  ./scripts/testbed up --datapath "$dp" >/dev/null
  # shellcheck disable=SC1091
  . out/testbed.env
  echo "/n2/small.txt" > "$out/paths"
  for r in $(seq 1 "$repeat"); do
    BATON_WRK_PATHS=$out/paths BATON_WRK_CLOSE=1 ip netns exec "$BATON_CLIENT_NS" \
      wrk -t2 -c50 -d"${seconds}s" --timeout 10s -s tests/integration/lib/mixed.lua \
      "http://$BATON_NODE_1_ADDR:$BATON_PORT/" > "$out/wrk-$dp-$r.txt" 2>&1
    grep -Eo 'Requests/sec: +[0-9.]+' "$out/wrk-$dp-$r.txt" | awk '{print $2}' >> "$out/rps-$dp.txt"
    ip netns exec "$BATON_CLIENT_NS" curl -s -o /dev/null -w '%{speed_download}\n' --max-time 120 \
      "http://$BATON_NODE_1_ADDR:$BATON_PORT/n2/big.bin" >> "$out/bulk-$dp.txt"
  done
  ./scripts/testbed down >/dev/null
done

/usr/bin/python3 - "$out" <<'PY'
import json, statistics, sys, pathlib
out = pathlib.Path(sys.argv[1])
packet = [json.loads(l) for l in (out / "packet.jsonl").read_text().splitlines()]
def med(name):
    v = [float(x) for x in (out / name).read_text().split()]
    return statistics.median(v), min(v), max(v)
e2e = {dp: {"requests_per_s": med(f"rps-{dp}.txt"), "bulk_bytes_per_s": med(f"bulk-{dp}.txt")}
       for dp in ("ebpf", "nfqueue")}
print()
print("Per packet (ns, median of 7 rounds)")
print(f"| {'case':<44} | {'eBPF (tc)':>10} | {'core rewrite':>12} | {'NFQUEUE path':>12} | {'NFQUEUE / eBPF':>14} |")
print(f"|{'-'*46}|{'-'*12}|{'-'*14}|{'-'*14}|{'-'*16}|")
for p in packet:
    nfq = p["nfqueue_path_ns"]
    ratio = f"{nfq / p['bpf_ns']:.1f}x" if nfq > 0 else "n/a"
    nfq_s = f"{nfq:.0f}" if nfq > 0 else "n/a"
    print(f"| {p['case']:<44} | {p['bpf_ns']:>10.0f} | {p['user_rewrite_ns']:>12.0f} | {nfq_s:>12} | {ratio:>14} |")
print()
print("End to end on the testbed (median [min-max] of the runs)")
print(f"| {'figure':<44} | {'eBPF':>22} | {'NFQUEUE':>22} | {'eBPF / NFQUEUE':>14} |")
print(f"|{'-'*46}|{'-'*24}|{'-'*24}|{'-'*16}|")
for key, label, scale, unit in (("requests_per_s", "requests/s, new connection each (handoff)", 1, ""),
                                ("bulk_bytes_per_s", "one handed-off 50 MB download, MB/s", 1e6, "")):
    e, n = e2e["ebpf"][key], e2e["nfqueue"][key]
    cell = lambda m: f"{m[0]/scale:.0f} [{m[1]/scale:.0f}-{m[2]/scale:.0f}]"
    print(f"| {label:<44} | {cell(e):>22} | {cell(n):>22} | {e[0]/n[0]:>13.1f}x |")
(out.parent / "bench-datapath.json").write_text(json.dumps({"packet": packet, "end_to_end": e2e}, indent=2) + "\n")
print()
print(f"written to {out.parent / 'bench-datapath.json'}")
PY
