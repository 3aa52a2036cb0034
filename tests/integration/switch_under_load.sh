#!/usr/bin/env bash
# The eBPF programs detached and attached again, twice, on nodes 1 and 2 under a load of handoffs (a new
# connection per request through node 1): not one request fails. Connections tc was following at the
# detach (their handshake answered, the request queued already or still to come) are taken over by
# batond from tc's records, not left to node 1's stack (which would answer 404). With several workers,
# every worker closes its gates, worker 0 switches the kernel, every worker drains its queue, and every
# worker hands off meanwhile.
. "$(dirname "$0")/lib/common.sh"
[ "$BATON_DATAPATH" = ebpf ] || skip "needs the eBPF datapath (the switch is between its programs and NFQUEUE)"
for n in $BATON_NODES; do eventually 10 all_peers_up "$n" || fail "node $n's peers are not all up"; done
before=$(per_worker 1 handed_off)
q=$(unique)
echo "/n2/small.txt?$q" > "$work/paths"
BATON_WRK_PATHS=$work/paths BATON_WRK_CLOSE=1 in_client wrk -t2 -c20 -d4s --timeout 5s \
  -s "$root/tests/integration/lib/mixed.lua" "http://$(node_addr 1):$BATON_PORT/" > "$work/wrk.out" 2>&1 &
wrk_pid=$!
cleanup_hooks+=("kill $wrk_pid 2>/dev/null")
sleep 1
for step in detach attach detach attach; do
  for n in 1 2; do
    "$batonctl" -s "$(node_socket "$n")" datapath "$step" > /dev/null || fail "datapath $step on node $n"
  done
  sleep 0.5
done
wait "$wrk_pid" || true
line=$(grep '^BATON_WRK' "$work/wrk.out") || fail "no summary from wrk: $(tail -3 "$work/wrk.out")"
for k in connect read write timeout status; do
  [[ $line == *" $k=0"* ]] || fail "failed requests across detach and attach ($(grep -c -- "$q.* 404 " "$(node_log 1)") answered 404 by node 1): $line"
done
after=$(per_worker 1 handed_off)
while read -r a b; do
  [ $((a - b)) -ge 100 ] || fail "a worker handed off only $((a - b)) requests across detach and attach"
done < <(paste -d' ' <(tr ' ' '\n' <<< "$after") <(tr ' ' '\n' <<< "$before"))
[ "$(datapath_counter 1 fe_forwarded)" -gt 0 ] || fail "tc forwarded nothing: the programs are not attached again"
wait_no_live_flows || fail "flows left after the load"
pass "$(sed 's/.*requests=\([0-9]*\).*/\1/' <<< "$line") requests through two detaches and attaches, none failed"
