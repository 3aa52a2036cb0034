#!/usr/bin/env bash
# Multiple handoff: every request of a keep-alive connection reaches a node that holds its content. One
# curl fetches node 2's, node 3's, node 2's (a larger body) and node 3's files through node 1 over one
# connection: every body byte-exact, one connection, and the client's capture one ordinary connection
# (sequence continuity, TSvals never going back, valid checksums, no RST). Afterwards no flow is left.
# Requests are watched where the front end's user space sees them: the NFQUEUE datapath. (Under eBPF tc
# forwards a handed-off flow's packets itself and does not watch request boundaries yet: skipped.)
. "$(dirname "$0")/lib/common.sh"
[ "$BATON_DATAPATH" = nfqueue ] || skip "request boundaries are watched in user space only (NFQUEUE datapath) so far"
paths="/n2/small.txt /n3/small.txt /n2/medium.bin /n3/small.txt"
for p in $paths; do [ -n "$(content_sha "$p")" ] || fail "no $p in the content map"; done
before=$(status 1 frontend.migrations)

for n in $BATON_NODES; do ip netns exec "$(node_ns "$n")" ethtool -K eth0 tx off >/dev/null 2>&1 || true; done
cleanup_hooks+=('for n in $BATON_NODES; do ip netns exec "$(node_ns "$n")" ethtool -K eth0 tx on >/dev/null 2>&1 || true; done')
pcap=$work/moves.pcap
nsenter --net="/run/netns/$BATON_CLIENT_NS" tcpdump -B 65536 -p -n -i "$BATON_CLIENT_IF" -s 0 \
  -w "$pcap" "tcp port $BATON_PORT" 2>"$work/tcpdump.err" &
dump=$!
cleanup_hooks+=("kill $dump 2>/dev/null")
eventually 5 grep -qs "listening on" "$work/tcpdump.err" || fail "tcpdump did not start"

args=()
i=0
for p in $paths; do
  args+=(-o "$work/body$i" "http://$(node_addr 1):$BATON_PORT$p")
  i=$((i + 1))
done
in_client curl -s --max-time 30 -w '%{http_code} %{num_connects}\n' "${args[@]}" > "$work/curl.out" ||
  fail "curl failed: $(cat "$work/curl.out")"
i=0
for p in $paths; do
  read -r code connects < <(sed -n "$((i + 1))p" "$work/curl.out")
  [ "$code" = 200 ] || fail "$p: status $code"
  expected=$([ $i = 0 ] && echo 1 || echo 0)
  [ "$connects" = "$expected" ] || fail "$p: $connects new connections (the connection was not kept)"
  [ "$(sha256sum < "$work/body$i" | cut -d' ' -f1)" = "$(content_sha "$p")" ] || fail "$p: body differs"
  i=$((i + 1))
done
moved=$(( $(status 1 frontend.migrations) - before ))
[ "$moved" = 3 ] || fail "$moved moves counted, 3 expected"

sleep 1.5  # tcpdump writes in blocks: let the last one arrive
kill -INT $dump; wait $dump 2>/dev/null || true
/usr/bin/python3 "$root/tests/integration/lib/tcp_checker.py" "$pcap" "$(node_addr 1)" "$BATON_PORT" > "$work/check.out" ||
  { cat "$work/check.out"; fail "the client's capture is not one clean connection"; }
[ "$(/usr/bin/python3 -c '
import sys
sys.path.insert(0, sys.argv[2])
from tcp_wire import packets
print(sum(1 for p in packets(sys.argv[1]) if len(p) > 33 and p[9] == 6 and p[33] & 0x04))' "$pcap" "$root/tests/integration/lib")" = 0 ] ||
  fail "a RST reached the client"
wait_no_live_flows 15 || fail "flows left after the connection closed"
pass "one connection, four requests on nodes 2, 3, 2, 3: byte-exact, 3 moves, the client saw one clean connection"
