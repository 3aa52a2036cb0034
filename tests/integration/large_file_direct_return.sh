#!/usr/bin/env bash
# The 50 MB file fetched through a handoff arrives byte-exact, and a capture on node 1 shows that its
# response bytes did not pass through node 1: the back end sends them straight to the client.
. "$(dirname "$0")/lib/common.sh"
path=/n2/big.bin
size=$(awk -F'\t' -v p=$path '$1 == p {print $2}' "$BATON_CONTENT")
[ "$size" -ge $((50 * 1024 * 1024)) ] || fail "testbed lacks the 50 MB file"
ns1=$(node_ns 1)
# nsenter execs tcpdump itself (ip netns exec would fork), so that our SIGINT reaches it; -U writes each
# packet at once and --immediate-mode hands each to tcpdump at once, so that nothing waits in a buffer
# when the capture stops.
nsenter --net="/run/netns/$ns1" tcpdump --immediate-mode -U -p -n -q -i "$BATON_NODE_1_IF" -w "$work/n1.pcap" -s 96 \
  "tcp port $BATON_PORT" 2>"$work/tcpdump.err" &
dump=$!
cleanup_hooks+=("kill $dump 2>/dev/null; wait $dump 2>/dev/null")
for _ in $(seq 1 50); do grep -q "listening on" "$work/tcpdump.err" && break; sleep 0.1; done
code=$(fetch 1 "$path?$(unique)" "$work/body")
sleep 0.5
kill -INT $dump; wait $dump 2>/dev/null || true
[ "$code" = 200 ] || fail "status $code"
[ "$(stat -c %s "$work/body")" = "$size" ] || fail "size $(stat -c %s "$work/body") != $size"
[ "$(sha256sum < "$work/body" | cut -d' ' -f1)" = "$(content_sha $path)" ] || fail "body differs"
# Sum the TCP payload of every segment node 1 saw leaving port 80 (responses).
resp=$(tcpdump -n -r "$work/n1.pcap" "tcp src port $BATON_PORT" 2>/dev/null | awk '{for (i=1;i<=NF;i++) if ($i=="length") s+=$(i+1)} END {print s+0}')
# The same count for the client's direction must see the request: proof that the count works.
req=$(tcpdump -n -r "$work/n1.pcap" "tcp dst port $BATON_PORT" 2>/dev/null | awk '{for (i=1;i<=NF;i++) if ($i=="length") s+=$(i+1)} END {print s+0}')
[ "$req" -gt 0 ] || fail "the capture shows no request bytes: the byte count is broken"
total=$(tcpdump -n -r "$work/n1.pcap" 2>/dev/null | wc -l)
[ "$total" -gt 10 ] || fail "the capture on node 1 saw nothing ($total packets): it proves nothing"
[ "$resp" -lt $((size / 100)) ] || fail "node 1 carried $resp response bytes of $size"
pass "50 MB byte-exact; node 1 saw $total packets of the flow but only $resp response payload bytes"
