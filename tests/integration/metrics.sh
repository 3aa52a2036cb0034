#!/usr/bin/env bash
# Every node's Prometheus endpoint (metrics_listen, named in testbed.env) answers from the client's
# namespace in the text format promtool accepts, and its counters agree with what a client saw: a
# workload of handed-off and local requests through node 1 moves baton_handoffs_total{result="accepted"}
# and the handoff latency histogram by exactly the handed-off requests, baton_served_locally_total by
# the local ones; node 1 sees its peers up with a round-trip time. A path other than /metrics is 404.
. "$(dirname "$0")/lib/common.sh"
command -v promtool > /dev/null || fail "promtool missing (Debian package prometheus; scripts/setup installs it)"
url() { local v="BATON_NODE_$1_METRICS"; echo "${!v}"; }
scrape() { in_client curl -sS --max-time 5 -o "$2" -w '%{http_code}' "$(url "$1")"; }
# metric FILE SAMPLE: the value of one sample line (name with its labels, as exposed).
metric() { awk -v s="$2" '$1 == s {print $2}' "$1"; }

for n in $BATON_NODES; do
  [ -n "$(url "$n")" ] || fail "testbed.env names no BATON_NODE_${n}_METRICS"
  code=$(scrape "$n" "$work/m$n") || fail "node $n: scrape failed"
  [ "$code" = 200 ] || fail "node $n: status $code"
  promtool check metrics < "$work/m$n" > "$work/lint$n" 2>&1 || fail "node $n: promtool: $(head -5 "$work/lint$n")"
  [ "$(metric "$work/m$n" "baton_up{node=\"$n\"}")" = 1 ] || fail "node $n: no baton_up for it"
done
for p in 2 3; do
  [ "$(metric "$work/m1" "baton_peer_up{peer=\"$p\"}")" = 1 ] || fail "node 1 does not show peer $p up"
  [ "$(metric "$work/m1" "baton_peer_stalled{peer=\"$p\"}")" = 0 ] || fail "node 1 shows peer $p stalled"
  rtt=$(metric "$work/m1" "baton_peer_rtt_seconds{peer=\"$p\"}")
  awk -v r="$rtt" 'BEGIN {exit !(r > 0 && r < 1)}' || fail "peer $p: round-trip time '$rtt'"
done

accepted() { metric "$1" 'baton_handoffs_total{result="accepted"}'; }
timed() { metric "$1" 'baton_handoff_latency_seconds_count'; }
local_served() { metric "$1" 'baton_served_locally_total{decided_by="any"}'; }
q=$(unique)
for i in 1 2 3 4 5 6 7 8; do
  [ "$(fetch 1 "/n2/small.txt?$q-r$i" "$work/body")" = 200 ] || fail "remote request $i failed"
done
for i in 1 2 3; do
  [ "$(fetch 1 "/n1/small.txt?$q-l$i" "$work/body")" = 200 ] || fail "local request $i failed"
done
scrape 1 "$work/after" > /dev/null || fail "second scrape failed"
handed=$(( $(accepted "$work/after") - $(accepted "$work/m1") ))
[ "$handed" = 8 ] || fail "baton_handoffs_total{result=\"accepted\"} moved by $handed, not 8"
[ $(( $(timed "$work/after") - $(timed "$work/m1") )) = 8 ] || fail "the handoff latency histogram did not count 8"
served=$(( $(local_served "$work/after") - $(local_served "$work/m1") ))
[ "$served" = 3 ] || fail "baton_served_locally_total moved by $served, not 3"
[ "$(metric "$work/after" 'baton_handoff_latency_seconds_bucket{le="+Inf"}')" = "$(timed "$work/after")" ] ||
  fail "the histogram's +Inf bucket is not its count"

code=$(in_client curl -sS --max-time 5 -o /dev/null -w '%{http_code}' "${BATON_NODE_1_METRICS%/metrics}/other")
[ "$code" = 404 ] || fail "/other: status $code"

# batonctl nodes: the same view for a person (or, with --json, a script), and exit codes a script can read.
states=$("$batonctl" -s "$(node_socket 1)" --json nodes | /usr/bin/python3 -c '
import json, sys; print(" ".join("%s:%s" % (n["id"], n["state"]) for n in json.load(sys.stdin)))')
[ "$states" = "1:self 2:up 3:up" ] || fail "batonctl nodes --json: $states"
"$batonctl" -s "$(node_socket 1)" nodes | grep -qE '^3 +up ' || fail "batonctl nodes: $("$batonctl" -s "$(node_socket 1)" nodes)"
# batonctl top: a row per interval with the rates of that interval; requests for node 2's content through
# node 1 during it show as handoffs.
in_client bash -c 'for i in $(seq 1 40); do curl -s -o /dev/null --max-time 5 "$1?top-$i"; done' _ \
  "http://$(node_addr 1):$BATON_PORT/n2/small.txt" &
cleanup_hooks+=("kill $! 2> /dev/null")
row=$("$batonctl" -s "$(node_socket 1)" --json top -i 1 -n 1) || fail "batonctl top failed"
/usr/bin/python3 -c '
import json, sys; r = json.loads(sys.argv[1])
sys.exit(not (r["handoffs_per_s"] > 0 and r["peers_up"] == 2 and r["peers"] == 2))' "$row" ||
  fail "batonctl top --json: $row"
"$batonctl" -s "$(node_socket 1)" top -i 0.2 -n 2 | grep -c '2/2$' | grep -qx 2 || fail "batonctl top: no two rows"
wait
# The Grafana dashboard asks only for metrics batond serves (the kernel datapath's, on that datapath).
for name in $(grep -o 'baton_[a-z_]*' "$root/packaging/grafana-dashboard.json" | sed 's/_bucket$//' | sort -u); do
  [[ $BATON_DATAPATH != ebpf && $name == baton_datapath_* ]] && continue
  grep -q "^# TYPE $name " "$work/after" || fail "the dashboard uses $name, which node 1 does not serve"
done
rc=0; "$batonctl" -s "$work/no.sock" nodes 2> /dev/null || rc=$?
[ "$rc" = 3 ] || fail "batonctl with no batond: exit $rc, not 3"
rc=0; "$batonctl" -s "$(node_socket 1)" drain 99 2> /dev/null || rc=$?
[ "$rc" = 1 ] || fail "batonctl drain of an unknown node: exit $rc, not 1"
rc=0; "$batonctl" nodse 2> /dev/null || rc=$?
[ "$rc" = 2 ] || fail "batonctl with a wrong command line: exit $rc, not 2"
pass "every node's /metrics passes promtool; 8 handoffs and 3 local requests counted exactly; peers up with their RTT; batonctl nodes, top and its exit codes; the dashboard's metrics served"
