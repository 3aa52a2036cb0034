#!/usr/bin/env bash
# A client scripted segment by segment (tests/integration/lib/scripted_client.py) asks node 1 for
# content on node 2 and for node 1's own, checking every segment it receives: source, checksums,
# acknowledgement of exactly its request (sent with a duplicate segment), sequence continuity from the
# SYN/ACK, timestamps that PAWS accepts, MSS, and a clean close.
. "$(dirname "$0")/lib/common.sh"
ipt() { ip netns exec "$BATON_CLIENT_NS" iptables -w "$@"; }
port=42000
# Our segments come from a raw socket: the client's own TCP knows nothing of the connection and would
# reset it. Checksums must be final on the wire for the checks: no offload on the nodes meanwhile.
ipt -A OUTPUT -p tcp --sport "$port" --tcp-flags RST RST -j DROP
cleanup_hooks+=("ipt -D OUTPUT -p tcp --sport $port --tcp-flags RST RST -j DROP")
for n in $BATON_NODES; do ip netns exec "$(node_ns "$n")" ethtool -K eth0 tx off >/dev/null 2>&1 || true; done
cleanup_hooks+=('for n in $BATON_NODES; do ip netns exec "$(node_ns "$n")" ethtool -K eth0 tx on >/dev/null 2>&1 || true; done')
for path in /n2/64k.bin /n1/medium.bin; do
  q=$(unique)
  out=$(in_client /usr/bin/python3 "$root/tests/integration/lib/scripted_client.py" "$BATON_CLIENT_ADDR" \
        "$(node_addr 1)" "$BATON_PORT" "$path?$q" "$(content_sha $path)" "$port") || fail "$path: $out"
  echo "$path: $out" | tail -n 1
  holder=$(content_holders "$path")
  grep -q "$q" "$(node_log "$holder")" || fail "$path: not served by node $holder"
  [ "$(grep -c "$q" "$(node_log "$holder")")" = 1 ] || fail "$path: the server saw the request twice"
  wait_no_live_flows || fail "$path: flows left behind"
done
pass "segment-level checks hold for a handed-off and a local connection"
