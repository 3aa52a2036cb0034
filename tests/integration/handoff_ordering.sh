#!/usr/bin/env bash
# A connection costs the server nothing more through Baton than straight to its node: the client's
# packets reach the serving kernel in the order the client sent them, across the switch from batond to
# the kernel path (handed off: tc redirects; served locally: the stack). The same load three times,
# hundreds of concurrent new connections (wrk; 50 under NFQUEUE), and node-local counters around each:
#   direct   node 2's content straight to node 2 (the reference);
#   handoff  the same through node 1, handed off to node 2;
#   local    node 1's own content through node 1, served by its nginx behind batond.
# Checked: the serving node's PAWS drops, retransmission timeouts and resets sent (nstat), per
# connection, no higher than direct's; its view of the client (a capture on its interface) never has a
# TSval step back far enough for its kernel to drop the segment (tsval_order.py); no socket error, only
# 200s; and (eBPF) the kernel path took every flow over: gates opened for the handoffs, flows released to
# the stack for the local ones, batond forwarding next to nothing itself.
. "$(dirname "$0")/lib/common.sh"
awk -F'\t' '$4 == "2" && $2 >= 65536 && $2 <= 1048576 {print $1}' "$BATON_CONTENT" > "$work/remote"
[ "$(wc -l < "$work/remote")" -ge 3 ] || fail "too few node-2 paths between 64 KiB and 1 MiB"
awk -F'\t' '$4 == "1" && $1 ~ /^\/n1\// {print $1}' "$BATON_CONTENT" > "$work/local"
[ "$(wc -l < "$work/local")" -ge 2 ] || fail "too few node-1 paths"
counters="TcpPassiveOpens TcpExtPAWSEstab TcpExtTCPTimeouts TcpOutRsts"
# The NFQUEUE reference datapath carries every byte through user space, on the holder too: 200 connections
# of up to 1 MiB would leave most of its run to the connections wrk aborts when it stops.
conns=200
[ "$BATON_DATAPATH" = nfqueue ] && conns=50

# snapshot NODE FILE: the node's absolute counters (nstat -a: no history file shared between namespaces).
snapshot() { ip netns exec "$(node_ns "$1")" nstat -asz $counters | awk 'NF >= 2 && $1 !~ /^#/ {print $1, $2}' > "$2"; }
delta() { awk -v k="$3" '$1 == k {v[FILENAME] = $2} END {print v[ARGV[2]] - v[ARGV[1]]}' "$1" "$2"; }
if_of() { local v="BATON_NODE_$1_IF"; echo "${!v}"; }

# load NAME TARGET SERVER PATHS: wrk through node TARGET, node SERVER's counters around it and its view of
# the client captured, from an equal start (no flow, no TIME_WAIT on the server left by an earlier run).
load() {
  local name=$1 target=$2 server=$3 paths=$4 line v
  wait_no_live_flows 20 || fail "flows left before the $name run"
  ip netns exec "$(node_ns "$server")" ss -K -t state time-wait > /dev/null 2>&1 || true
  ip netns exec "$(node_ns "$server")" tcpdump -i "$(if_of "$server")" -s 128 -w "$work/$name.pcap" -U \
    "tcp and dst host $(node_addr "$server") and dst port $BATON_PORT" > "$work/$name.tcpdump" 2>&1 &
  local dump=$!
  cleanup_hooks+=("kill $dump 2>/dev/null")
  eventually 5 grep -qs "listening on" "$work/$name.tcpdump" || fail "tcpdump did not start ($name)"
  snapshot "$server" "$work/$name.before"
  BATON_WRK_PATHS=$paths BATON_WRK_CLOSE=1 in_client wrk -t2 -c"$conns" -d6s --timeout 10s \
    -s "$root/tests/integration/lib/mixed.lua" "http://$(node_addr "$target"):$BATON_PORT/" > "$work/$name.wrk" 2>&1 || {
    cat "$work/$name.wrk"; fail "wrk failed ($name)"; }
  wait_no_live_flows 20 || fail "flows left after the $name run"
  snapshot "$server" "$work/$name.after"
  kill -INT "$dump"; wait "$dump" || true
  line=$(grep '^BATON_WRK' "$work/$name.wrk") || fail "no summary from wrk ($name)"
  for k in connect read write timeout status; do
    v=$(echo "$line" | tr ' ' '\n' | awk -F= -v k="$k" '$1 == k {print $2}')
    [ "$v" = 0 ] || { cat "$work/$name.wrk"; fail "$name: $k errors: $v"; }
  done
  echo "$name: $(echo "$line" | tr ' ' '\n' | grep -E '^(requests|p50_us|p99_us)=' | tr '\n' ' ')"
}

problems=0
# compare NAME: the run's counters per 1000 connections against direct's, allowing a stray event or two on
# a busy machine (0.5 per 1000, at least 2: the connections wrk aborts when it stops end in resets on
# either path). Then the order of the client's segments.
compare() {
  local name=$1 k verdict server=$2
  for k in TcpExtPAWSEstab TcpExtTCPTimeouts TcpOutRsts; do
    verdict=$(awk -v k="$k" -v dn="$(delta "$work/direct.before" "$work/direct.after" "$k")" \
      -v dc="$(delta "$work/direct.before" "$work/direct.after" TcpPassiveOpens)" \
      -v hn="$(delta "$work/$name.before" "$work/$name.after" "$k")" \
      -v hc="$(delta "$work/$name.before" "$work/$name.after" TcpPassiveOpens)" -v name="$name" 'BEGIN {
        d = dc ? 1000 * dn / dc : 0; h = hc ? 1000 * hn / hc : 0
        slack = hc ? 1000 * 2 / hc : 0; if (slack < 0.5) slack = 0.5
        printf "%s: direct %.2f, %s %.2f per 1000 connections -> %s", k, d, name, h, (h <= d + slack) ? "ok" : "WORSE" }')
    echo "$verdict"
    [[ $verdict == *WORSE ]] && problems=$((problems + 1))
  done
  python3 "$root/tests/integration/lib/tsval_order.py" "$work/$name.pcap" "$(node_addr "$server")" "$BATON_PORT" ||
    problems=$((problems + 1))
}
# grew NAME BEFORE: a status or datapath counter's growth since BEFORE.
ebpf=0
[ "$BATON_DATAPATH" = ebpf ] && ebpf=1
counter() { if [[ $1 == fe_* ]]; then datapath_counter 1 "$1"; else status 1 "$1"; fi; }

load direct 2 2 "$work/remote"
python3 "$root/tests/integration/lib/tsval_order.py" "$work/direct.pcap" "$(node_addr 2)" "$BATON_PORT" ||
  echo "(direct itself has overtaken segments: the machine reorders; the comparisons below are against it)"

handed0=$(counter frontend.handed_off); fwd0=$(counter frontend.packets_forwarded); gates0=$(counter fe_gate_opened)
load handoff 1 2 "$work/remote"
handed=$(( $(counter frontend.handed_off) - handed0 ))
compare handoff 2
[ "$handed" -gt 100 ] || fail "only $handed handoffs during the run"
if [ $ebpf = 1 ]; then
  gates=$(( $(counter fe_gate_opened) - gates0 )); fwd=$(( $(counter frontend.packets_forwarded) - fwd0 ))
  echo "handoff: gates opened for $gates of $handed handoffs; packets batond forwarded itself: $fwd"
  [ "$gates" -ge $((handed * 99 / 100)) ] || problems=$((problems + 1))
  [ "$fwd" -le $((handed / 10)) ] || problems=$((problems + 1))
fi

local0=$(counter frontend.served_locally); kernel0=$(counter fe_triage_local)
load local 1 1 "$work/local"
served=$(( $(counter frontend.served_locally) - local0 ))
compare local 1
[ "$served" -gt 100 ] || fail "only $served requests served locally during the run"
if [ $ebpf = 1 ]; then
  # tc serves these itself (kernel triage: one path, the stack's, from the SYN on); flows batond
  # decides locally are released to the stack through the gate (bpf_prog_test) and nothing is left.
  kernel=$(( $(counter fe_triage_local) - kernel0 ))
  echo "local: $kernel of $served flows served by tc without batond"
  [ "$kernel" -gt 0 ] || problems=$((problems + 1))
  no_gates() { [ "$("$batonctl" -s "$(node_socket 1)" --json status | python3 -c 'import json,sys
print(json.load(sys.stdin)["datapath_stats"]["gates_tracked"])')" = 0 ]; }
  eventually 5 no_gates || { echo "node 1 still tracks flows served locally"; problems=$((problems + 1)); }
fi

[ "$problems" = 0 ] || fail "$problems of the checks above failed"
pass "$handed connections handed off and $served served locally in order: no PAWS drop, timeout or reset beyond direct's"
