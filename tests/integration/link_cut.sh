#!/usr/bin/env bash
# Node 2's link is cut while a client fetches shared content (nodes 2 and 3) through node 1, a new
# connection every 50 ms. A handoff sent to node 2 after the cut is never acknowledged by its kernel:
# when node 2 is marked down (timeouts.peer_down_ms) the front end sends it to node 3 instead of
# resetting it, so every request is answered 200 (the ones caught in the cut late by up to a second).
# Link back: node 2 is connected and used again.
. "$(dirname "$0")/lib/common.sh"
[ "$(content_holders /shared/a.bin)" = "2,3" ] || fail "the test needs /shared/a.bin on nodes 2 and 3"
eventually 10 peers_up 1 || fail "node 1's peers are not all up"
br=${BATON_CLIENT_NS%-client}-br
link() { ip -n "$br" link set "v-${1}" "$2"; }
cleanup_hooks+=("ip -n $br link set v-n2 up")
unreached_before=$(status 1 frontend.handoff_unreached)
q=$(unique)
link n2 down
pids=()
for i in $(seq 1 30); do
  in_client curl -s -o "$work/body-$i" -w '%{http_code}' --max-time 10 \
    "http://$(node_addr 1):$BATON_PORT/shared/a.bin?$q-$i" > "$work/code-$i" &
  pids+=($!)
  sleep 0.05
done
for p in "${pids[@]}"; do wait "$p" || true; done
for i in $(seq 1 30); do
  code=$(cat "$work/code-$i")
  [ "$code" = 200 ] || fail "request $i after node 2's link was cut: status ${code:-none} (reset or timed out)"
  [ "$(sha256sum < "$work/body-$i" | cut -d' ' -f1)" = "$(content_sha /shared/a.bin)" ] || fail "request $i: body differs"
done
unreached=$(( $(status 1 frontend.handoff_unreached) - unreached_before ))
[ "$unreached" -ge 1 ] || fail "no handoff caught in the cut (node 2 never chosen?): the test proved nothing"
link n2 up
node2_up() { [ "$(peer_connected 1 2)" = 1 ]; }
eventually 10 node2_up || fail "node 2 not connected again 10 s after its link came back"
code=$(fetch 1 "/n2/small.txt?$q-back" "$work/body")
[ "$code" = 200 ] && logged 2 "$q-back" || fail "node 2 not handed requests again after its link came back"
wait_no_live_flows 15 || fail "flows left"
pass "node 2's link cut: 30 requests through node 1 all 200 ($unreached handoffs caught in the cut sent to node 3); node 2 used again once its link is back"
