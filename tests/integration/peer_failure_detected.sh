#!/usr/bin/env bash
# A peer whose batond hangs (SIGSTOP) is marked down by the others within timeouts.peer_down_ms (900 ms
# by default) and gets no new handoffs: content it shares with another node is served by that node, every
# request 200. Once it runs again it is connected and used again without an operator.
. "$(dirname "$0")/lib/common.sh"

[ "$(content_holders /shared/a.bin)" = "2,3" ] || fail "the test needs /shared/a.bin on nodes 2 and 3"
eventually 10 all_peers_up 1 || fail "node 1's peers are not all up"
pid=$(cat "$root/out/testbed/n2/batond.pid")
cleanup_hooks+=("kill -CONT $pid 2>/dev/null")
start=$(date +%s%N)
kill -STOP "$pid"
while [ "$(peer_connected 1 2)" = 1 ]; do
  [ $(( ($(date +%s%N) - start) / 1000000 )) -lt 5000 ] || fail "node 2 still connected 5 s after its batond stopped"
  sleep 0.02
done
detected_ms=$(( ($(date +%s%N) - start) / 1000000 ))
echo "node 2 marked down after $detected_ms ms"
# 900 ms of silence, one 20 ms tick, and the time this loop takes to ask.
[ "$detected_ms" -lt 1200 ] || fail "node 2 marked down only after $detected_ms ms (timeouts.peer_down_ms is 900)"

q=$(unique)
for i in 1 2 3 4 5; do
  code=$(fetch 1 "/shared/a.bin?$q-$i" "$work/body")
  [ "$code" = 200 ] || fail "request $i while node 2 is down: status $code"
  [ "$(sha256sum < "$work/body" | cut -d' ' -f1)" = "$(content_sha /shared/a.bin)" ] || fail "request $i: body differs"
done
logged 3 "$q-5" || fail "node 3 did not serve the shared file while node 2 was down"
! grep -q -- "$q" "$(node_log 2)" || fail "node 2 got a request while marked down"

kill -CONT "$pid"
back_in_use 2 5 "$q-back" || fail "node 2 not in use again after its batond resumed"
wait_no_live_flows 15 || fail "flows left"
pass "node 2 marked down $detected_ms ms after its batond stopped; 5 shared requests all served by node 3; node 2 back in use after it resumed"
