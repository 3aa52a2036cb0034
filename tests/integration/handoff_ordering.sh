#!/usr/bin/env bash
# A handed-off connection costs the back end nothing a direct one does not: its client packets reach the
# back end in the order the client sent them, across the switch from batond to the kernel path. The same
# load twice, hundreds of concurrent new connections for bodies of 64 KiB to 1 MiB (wrk), once straight
# to node 2 and once through node 1, handed off to node 2:
#   - node 2's PAWS drops, retransmission timeouts and resets sent (nstat), per connection, are no higher
#     through node 1 than straight to it;
#   - node 2's view of the client (a capture on its interface) never has a TSval step back far enough for
#     its kernel to drop the segment (tsval_order.py);
#   - no socket error, no answer other than 200, and (eBPF) the kernel path carried the handed-off flows:
#     every handoff's gate opened and batond forwarded next to nothing itself.
. "$(dirname "$0")/lib/common.sh"
awk -F'\t' '$4 == "2" && $2 >= 65536 && $2 <= 1048576 {print $1}' "$BATON_CONTENT" > "$work/paths"
[ "$(wc -l < "$work/paths")" -ge 3 ] || fail "too few node-2 paths between 64 KiB and 1 MiB"
node2=$(node_ns 2)
counters="TcpPassiveOpens TcpExtPAWSEstab TcpExtTCPTimeouts TcpOutRsts"

# snapshot FILE: node 2's absolute counters (nstat -a: no history file shared between namespaces).
snapshot() { ip netns exec "$node2" nstat -asz $counters | awk 'NF >= 2 && $1 !~ /^#/ {print $1, $2}' > "$1"; }
delta() { awk -v k="$3" '$1 == k {v[FILENAME] = $2} END {print v[ARGV[2]] - v[ARGV[1]]}' "$1" "$2"; }

# load NODE NAME: the load through NODE from an equal start (no TIME_WAIT on node 2 from an earlier
# row), node 2's counters around it.
load() {
  wait_no_live_flows 20 || fail "flows left before the $2 run"
  ip netns exec "$node2" ss -K -t state time-wait > /dev/null 2>&1 || true
  snapshot "$work/$2.before"
  BATON_WRK_PATHS=$work/paths BATON_WRK_CLOSE=1 in_client wrk -t2 -c200 -d6s --timeout 10s \
    -s "$root/tests/integration/lib/mixed.lua" "http://$(node_addr "$1"):$BATON_PORT/" > "$work/$2.wrk" 2>&1 || {
    cat "$work/$2.wrk"; fail "wrk failed ($2)"; }
  snapshot "$work/$2.after"
  local line
  line=$(grep '^BATON_WRK' "$work/$2.wrk") || fail "no summary from wrk ($2)"
  for k in connect read write timeout status; do
    local v
    v=$(echo "$line" | tr ' ' '\n' | awk -F= -v k="$k" '$1 == k {print $2}')
    [ "$v" = 0 ] || { cat "$work/$2.wrk"; fail "$2: $k errors: $v"; }
  done
  echo "$2: $(echo "$line" | tr ' ' '\n' | grep -E '^(requests|p50_us|p99_us)=' | tr '\n' ' ')"
}

load 2 direct
handed_before=$(status 1 frontend.handed_off)
forwarded_before=$(status 1 frontend.packets_forwarded)
gates_before=$(datapath_counter 1 fe_gate_opened)
ip netns exec "$node2" tcpdump -i "$BATON_NODE_2_IF" -s 128 -w "$work/be.pcap" -U \
  "tcp and dst host $(node_addr 2) and dst port $BATON_PORT" > "$work/tcpdump.log" 2>&1 &
dump=$!
cleanup_hooks+=("kill $dump 2>/dev/null")
eventually 5 grep -q "listening on" "$work/tcpdump.log" || fail "tcpdump did not start"
load 1 handoff
sleep 0.5
kill -INT "$dump"; wait "$dump" || true
handed=$(( $(status 1 frontend.handed_off) - handed_before ))
forwarded=$(( $(status 1 frontend.packets_forwarded) - forwarded_before ))
gates=$(( $(datapath_counter 1 fe_gate_opened) - gates_before ))

# Per 1000 connections; a difference within 0.5 per 1000 is a single stray event on a busy machine.
problems=0
for k in TcpExtPAWSEstab TcpExtTCPTimeouts TcpOutRsts; do
  read -r d_n d_c h_n h_c <<< "$(delta "$work/direct.before" "$work/direct.after" "$k") \
$(delta "$work/direct.before" "$work/direct.after" TcpPassiveOpens) \
$(delta "$work/handoff.before" "$work/handoff.after" "$k") \
$(delta "$work/handoff.before" "$work/handoff.after" TcpPassiveOpens)"
  verdict=$(awk -v dn="$d_n" -v dc="$d_c" -v hn="$h_n" -v hc="$h_c" 'BEGIN {
    d = dc ? 1000 * dn / dc : 0; h = hc ? 1000 * hn / hc : 0
    printf "%s direct %.2f, handed off %.2f per 1000 connections -> %s", "'"$k"'", d, h, (h <= d + 0.5) ? "ok" : "WORSE" }')
  echo "$verdict"
  [[ $verdict == *WORSE ]] && problems=$((problems + 1))
done
python3 "$root/tests/integration/lib/tsval_order.py" "$work/be.pcap" "$(node_addr 2)" "$BATON_PORT" ||
  problems=$((problems + 1))
[ "$handed" -gt 500 ] || fail "only $handed handoffs during the run"
if [ "$BATON_DATAPATH" = ebpf ]; then
  echo "gates opened: $gates of $handed handoffs; packets batond forwarded itself: $forwarded"
  [ "$gates" -ge $((handed * 99 / 100)) ] || problems=$((problems + 1))
  [ "$forwarded" -le $((handed / 10)) ] || problems=$((problems + 1))
fi
[ "$problems" = 0 ] || fail "$problems of the checks above failed"
pass "$handed connections handed off in order: no PAWS drop, timeout or reset beyond direct's"
