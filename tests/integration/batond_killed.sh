#!/usr/bin/env bash
# A node's batond killed (SIGKILL, no chance to clean up) in the middle of a handed-off download, on the
# front end and then on the back end, and started again.
# eBPF datapath: the flow lives on in the kernel (attached programs, pinned maps); the restarted batond
# cleans up the dead one's rules, adopts the flow and sees it closed: the download completes byte-exact.
# NFQUEUE datapath: the translation died with the process, so the connection cannot go on; it must end
# cleanly instead: the client's download fails promptly (a reset, not a hang until its timeout), both
# nodes free the flow (the restarted batond tells its peer it carries no flows, and the peer resets the
# client: the back end through its kernel, the front end by nudging the client into a RST from its
# stack), no socket of the connection is left on the client or the back end, and the next download works.
# A clean stop without --keep-flows (eBPF datapath: programs detached, maps unpinned) loses the flows
# the same way and must end them the same way.
. "$(dirname "$0")/lib/common.sh"
cleanup_hooks+=('for n in 1 2; do batond_alive $n || { start_batond $n; eventually 10 all_peers_up $n; }; done')
both_up() { [ "$(peers_up 1)$(peers_up 2)" = 11 ]; }
# no_socket NS PORT: no connection of the client port left there but a TIME_WAIT.
no_socket() { [ -z "$(ip netns exec "$1" ss -Htan "( sport = :$2 or dport = :$2 )" | grep -v TIME-WAIT)" ]; }
cases="kill:1 kill:2"
[ "$BATON_DATAPATH" = ebpf ] && cases="$cases stop:2"
cport=44100
for case in $cases; do
  how=${case%:*}
  victim=${case#*:}
  cport=$((cport + 1))
  # Only a kill under the kernel datapath leaves the flow running; everything else must end it.
  survives=0
  [ "$BATON_DATAPATH" = ebpf ] && [ "$how" = kill ] && survives=1
  rm -f "$work/body"  # grows measures from what is there: nothing of the previous case
  bg_curl -s -o "$work/body" -w '%{http_code}' --local-port "$cport" --limit-rate 8M --max-time 60 \
    "http://$(node_addr 1):$BATON_PORT/n2/big.bin?$(unique)" > "$work/code"
  fetch=$bg_pid
  grows "$work/body" 2000000 || fail "node $victim ($how): the download did not get going"
  if [ "$how" = kill ]; then
    kill_batond "$victim" || fail "node $victim's batond did not die"
  else
    stop_batond "$victim" || fail "node $victim's batond did not stop"
  fi
  if [ $survives = 1 ]; then
    running $fetch || fail "node $victim: the download ended with batond (too fast to prove anything)"
    grows "$work/body" 1000000 || fail "node $victim killed: the flow stopped with its batond"
  fi
  start_batond "$victim"
  eventually 10 both_up || fail "node $victim: the restarted batond did not reconnect"
  restarted=$SECONDS
  if [ $survives = 1 ]; then
    wait $fetch || fail "node $victim killed: curl failed"
    [ "$(cat "$work/code")" = 200 ] || fail "node $victim killed: status $(cat "$work/code")"
    [ "$(sha256sum < "$work/body" | cut -d' ' -f1)" = "$(content_sha /n2/big.bin)" ] || fail "node $victim killed: body differs"
    wait_no_live_flows 20 || fail "node $victim killed: the flow was not closed on both nodes"
    echo "batond of node $victim killed mid-download: 50 MB byte-exact, flow adopted and closed"
    continue
  fi
  rc=0
  wait $fetch || rc=$?
  took=$((SECONDS - restarted))
  [ "$rc" != 0 ] || fail "node $victim ($how): the download completed without its translation?"
  [ "$took" -le 5 ] || fail "node $victim ($how): the client hung for ${took} s after the restart (curl exit $rc)"
  wait_no_live_flows 10 || fail "node $victim ($how): flows left"
  eventually 10 no_socket "$BATON_CLIENT_NS" "$cport" || fail "node $victim ($how): the client kept its socket"
  eventually 10 no_socket "$(node_ns 2)" "$cport" || fail "node $victim ($how): node 2 kept its socket"
  code=$(fetch 1 "/n2/small.txt?$(unique)" "$work/small")
  [ "$code" = 200 ] || fail "node $victim ($how): the next download failed ($code)"
  echo "batond of node $victim ($how) mid-download: curl ended (exit $rc) within ${took} s of the restart; no state or socket left"
done
if [ "$BATON_DATAPATH" = ebpf ]; then
  pass "downloads survive a SIGKILL of the front end's or the back end's batond; a clean stop ends them cleanly"
else
  pass "a SIGKILL of either batond ends its connections cleanly once it is back"
fi
