#!/usr/bin/env bash
# A client scripted segment by segment (tests/integration/lib/scripted_client.py) asks node 1 for
# content on node 2 and for node 1's own, checking every segment it receives: source, checksums,
# acknowledgement of exactly its request (sent with a duplicate segment), sequence continuity from the
# SYN/ACK, timestamps that PAWS accepts, MSS, and a clean close; again with the request's segments out of
# order, with a simultaneous close (FINs crossing), and reusing a port whose TIME_WAIT on the back end
# rejects the replayed SYN.
. "$(dirname "$0")/lib/common.sh"
ipt() { ip netns exec "$BATON_CLIENT_NS" iptables -w "$@"; }
port=42000
# Our segments come from a raw socket: the client's own TCP knows nothing of the connection and would
# reset it. Checksums must be final on the wire for the checks: no offload on the nodes meanwhile.
ipt -A OUTPUT -p tcp --sport "$port" --tcp-flags RST RST -j DROP
cleanup_hooks+=("ipt -D OUTPUT -p tcp --sport $port --tcp-flags RST RST -j DROP")
for n in $BATON_NODES; do ip netns exec "$(node_ns "$n")" ethtool -K eth0 tx off >/dev/null 2>&1 || true; done
cleanup_hooks+=('for n in $BATON_NODES; do ip netns exec "$(node_ns "$n")" ethtool -K eth0 tx on >/dev/null 2>&1 || true; done')
# path and modes (see scripted_client.py): plain, the request's segments reordered while held, FINs
# crossing (a simultaneous close: both sides' close tracking must still see the flow end).
while read -r path modes; do
  q=$(unique)
  out=$(in_client /usr/bin/python3 "$root/tests/integration/lib/scripted_client.py" "$BATON_CLIENT_ADDR" \
        "$(node_addr 1)" "$BATON_PORT" "$path?$q" "$(content_sha $path)" "$port" "$modes") || fail "$path $modes: $out"
  echo "$path ${modes:-plain}: $(echo "$out" | tail -n 1)"
  holder=$(content_holders "$path")
  logged "$holder" "$q" || fail "$path: not served by node $holder"
  [ "$(grep -c "$q" "$(node_log "$holder")")" = 1 ] || fail "$path: the server saw the request twice"
  wait_no_live_flows || fail "$path ${modes:-plain}: flows left behind"
  # The next run reuses the port: the server side's TIME_WAIT (if it closed first) accepts a new SYN
  # with newer timestamps, which our millisecond clock provides after a moment.
  sleep 1.1
done <<'RUNS'
/n2/64k.bin
/n1/medium.bin
/n2/64k.bin reorder
/n1/medium.bin reorder
/n2/64k.bin simultaneous-close
/n1/medium.bin simultaneous-close
RUNS

# The same port again through another front end (node 3), right after a handoff whose server closed
# first: node 2 still holds that connection's TIME_WAIT, and our timestamps look older to it (Linux
# offsets them per address pair). The TIME_WAIT answers the replayed SYN with a bare ACK; the back end
# must clear it (as the client's own stack would with a RST) and replay again.
run() {  # node path modes (the query string is $q)
  in_client /usr/bin/python3 "$root/tests/integration/lib/scripted_client.py" "$BATON_CLIENT_ADDR" \
    "$(node_addr "$1")" "$BATON_PORT" "$2?$q" "$(content_sha "$2")" "$port" "$3"
}
q=$(unique)
out=$(run 1 /n2/64k.bin "") || fail "before the port reuse: $out"
[ -n "$(ip netns exec "$(node_ns 2)" ss -Htan state time-wait "( dport = :$port )")" ] ||
  fail "node 2 kept no TIME_WAIT: the scenario did not happen"
cleared=$(status 2 backend.time_waits_cleared)
q=$(unique)
out=$(run 3 /n2/64k.bin old-timestamps) || fail "port reuse through node 3 over node 2's TIME_WAIT: $out"
echo "reuse through node 3 with older timestamps: $(echo "$out" | tail -n 1)"
logged 2 "$q" || fail "port reuse: not served by node 2"
[ "$(status 2 backend.time_waits_cleared)" -gt "$cleared" ] || fail "port reuse: node 2 cleared no TIME_WAIT"
wait_no_live_flows || fail "port reuse: flows left behind"
pass "segment-level checks hold for handed-off and local connections, with reordered requests, crossed FINs and a TIME_WAIT in the way"
