#!/usr/bin/env bash
# Node 2's link is cut while a client fetches shared content (nodes 2 and 3) through node 1, a new
# connection every 50 ms. When node 2 is marked down (timeouts.peer_down_ms), a handoff to it whose
# request never left node 1 (TCP stopped sending after the cut) goes to node 3 instead; one whose request
# was sent may have reached node 2 and is aborted (the client sees a reset, never two answers). Every
# request ends as a byte-exact 200 or a reset, none hangs; node 2 is never chosen once down. Link back:
# node 2 is connected and used again. (Node 1 does not watch for stalls here: see below.)
. "$(dirname "$0")/lib/common.sh"
[ "$(content_holders /shared/a.bin)" = "2,3" ] || fail "the test needs /shared/a.bin on nodes 2 and 3"
eventually 10 all_peers_up 1 || fail "node 1's peers are not all up"
br=${BATON_CLIENT_NS%-client}-br
link() { ip -n "$br" link set "v-${1}" "$2"; }
cleanup_hooks+=("ip -n $br link set v-n2 up")
# Node 1 runs with timeouts.peer_stall_ms = 0: this test is about the handoffs pending when node 2 is
# marked down, which a stall's detection would otherwise steer away before they are pending (that is
# link_stall's test).
conf=$work/n1.toml
{ cat "$root/out/testbed/n1/batond.toml"; printf '\n[timeouts]\npeer_stall_ms = 0\n'; } > "$conf"
cleanup_hooks+=('restart_node 1')
restart_node 1 "$conf" || fail "node 1 did not start with peer_stall_ms = 0"
unreached_before=$(status 1 frontend.handoff_unreached)
# Node 3 busy (30 keep-alive connections held open on it after one request each): node 1 prefers node 2
# for every handoff until it marks node 2 down, so that those after the first retransmission timeout
# queue in the cut control connection, never leaving node 1.
hold_busy 3 30
# How many handoffs are reset depends on how long node 1's TCP goes on sending into the cut link: until
# its first retransmission timeout. The 20-of-30 bound below assumes a settled one.
eventually 20 control_rto_settled 1 2 || fail "node 1's control connection to node 2 kept an RTO above 300 ms"
eventually 5 busy_seen 3 30 || fail "node 3's idle connections not counted in its load"
q=$(unique)
link n2 down
pids=()
for i in $(seq 1 30); do
  {
    rc=0
    in_client curl -s -o "$work/body-$i" -w '%{http_code}' --max-time 10 \
      "http://$(node_addr 1):$BATON_PORT/shared/a.bin?$q-$i" > "$work/code-$i" || rc=$?
    echo $rc > "$work/rc-$i"
  } &
  pids+=($!)
  sleep 0.05
done
for p in "${pids[@]}"; do wait "$p" || true; done
ok=0 reset=0
for i in $(seq 1 30); do
  code=$(cat "$work/code-$i") rc=$(cat "$work/rc-$i")
  if [ "$code" = 200 ]; then
    [ "$(sha256sum < "$work/body-$i" | cut -d' ' -f1)" = "$(content_sha /shared/a.bin)" ] || fail "request $i: a 200 with a wrong body"
    ok=$((ok + 1))
  elif [ "$rc" = 56 ] || [ "$rc" = 52 ]; then
    reset=$((reset + 1))  # reset (or closed) before an answer: the client retries
  else
    fail "request $i after node 2's link was cut: status ${code:-none}, curl exit $rc"
  fi
done
unreached=$(( $(status 1 frontend.handoff_unreached) - unreached_before ))
echo "30 requests: $ok answered 200, $reset reset; $unreached handoffs that never left node 1 went to node 3"
[ "$ok" -ge 20 ] || fail "only $ok of 30 requests answered"
[ "$unreached" -ge 1 ] || fail "no handoff caught unsent in the cut: the retry was not exercised"
kill $busy_pid 2>/dev/null
link n2 up
back_in_use 2 10 "$q-back" || fail "node 2 not in use again after its link came back"
wait_no_live_flows 15 || fail "flows left"
pass "node 2's link cut: $ok of 30 requests 200, $reset reset, none hung or corrupt ($unreached unsent handoffs sent to node 3); node 2 used again once its link is back"
