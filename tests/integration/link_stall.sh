#!/usr/bin/env bash
# Node 2's link is cut while node 3 is busy, so that node 1 prefers node 2 for shared content (nodes 2
# and 3). Once node 2's kernel has acknowledged nothing for timeouts.peer_stall_ms (250 ms), and before
# node 2 is marked down (peer_down_ms, 900 ms), node 1 shows node 2 "stalled" and sends new requests for
# shared content to node 3 at once, each answered within 0.2 s while node 2 is still connected. Without
# the stall watch (peer_stall_ms = 0) such a request goes to node 2 and waits in the cut connection until
# node 2 is marked down, then goes to node 3 (measured: 0.15 s for one sent 0.55 s after the cut), so
# node 2 is no longer connected when it is answered. Link back: node 2 acknowledges again and is used
# again.
. "$(dirname "$0")/lib/common.sh"
[ "$(content_holders /shared/a.bin)" = "2,3" ] || fail "the test needs /shared/a.bin on nodes 2 and 3"
eventually 10 all_peers_up 1 || fail "node 1's peers are not all up"
br=${BATON_CLIENT_NS%-client}-br
cleanup_hooks+=("ip -n $br link set v-n2 up")
hold_busy 3 30
eventually 5 busy_seen 3 30 || fail "node 3's idle connections not counted in its load"
eventually 20 control_rto_settled 1 2 || fail "node 1's control connection to node 2 kept an RTO above 300 ms"
node_state() {
  "$batonctl" -s "$(node_socket 1)" --json nodes | /usr/bin/python3 -c '
import json, sys
print(next(n["state"] for n in json.load(sys.stdin) if n["id"] == int(sys.argv[1])))' "$1"
}
[ "$(node_state 2)" = up ] || fail "node 2 is $(node_state 2) before the cut"
log1=$root/out/testbed/n1/batond.log
stall_lines() { grep -c "node 2 has acknowledged nothing for 250 ms" "$log1" || true; }
stalls_before=$(stall_lines)
q=$(unique)
ip -n "$br" link set v-n2 down
stalled() { [ "$(node_state 2)" = stalled ]; }
eventually 2 stalled || fail "node 2 not seen stalled after its link was cut (now: $(node_state 2))"
# Five new connections in one curl, one after the other.
urls=()
for i in 1 2 3 4 5; do urls+=(-o "$work/body-$i" "http://$(node_addr 1):$BATON_PORT/shared/a.bin?$q-$i"); done
in_client curl -s -H 'Connection: close' --max-time 5 -w '%{http_code} %{time_total}\n' "${urls[@]}" > "$work/times" || true
# All five within the stall: node 2 not yet marked down when they were done.
[ "$(peer_connected 1 2)" = 1 ] ||
  fail "node 2 was marked down before the requests were done: they did not test the stall (times: $(tr '\n' ' ' < "$work/times"))"
[ "$(wc -l < "$work/times")" = 5 ] || fail "not five answers: $(cat "$work/times")"
while read -r code secs; do
  [ "$code" = 200 ] || fail "a request during the stall answered $code"
  awk -v s="$secs" 'BEGIN {exit !(s < 0.2)}' ||
    fail "a request during the stall took $secs s: it waited for node 2 (times: $(tr '\n' ' ' < "$work/times"))"
done < "$work/times"
for i in 1 2 3 4 5; do
  [ "$(sha256sum < "$work/body-$i" | cut -d' ' -f1)" = "$(content_sha /shared/a.bin)" ] || fail "request $i: body differs"
  logged 3 "$q-$i" || fail "request $i during the stall not served by node 3"
done
[ "$(stall_lines)" -gt "$stalls_before" ] || fail "node 1 did not log node 2's stall"
times=$(awk '{printf "%s ", $2}' "$work/times")
# Down in the end (peer_down_ms), before the link comes back: a connection that outlived the cut could
# still be dropped by a heartbeat timeout just after, under the next request.
down() { [ "$(peer_connected 1 2)" = 0 ]; }
eventually 3 down || fail "node 2 not marked down after its link was cut"
ip -n "$br" link set v-n2 up
kill "$busy_pid" 2>/dev/null
back_in_use 2 10 "$q-back" || fail "node 2 not in use again after its link came back"
eventually 5 eval '[ "$(node_state 2)" = up ]' || fail "node 2 is $(node_state 2) after its link came back"
wait_no_live_flows 15 || fail "flows left"
pass "node 2 stalled (its link cut): 5 requests for shared content answered by node 3 in $times s, before node 2 was marked down; node 2 used again once its link is back"
