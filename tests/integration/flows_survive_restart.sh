#!/usr/bin/env bash
# eBPF datapath: a handed-off download goes on, byte-exact, while the batond of its front end and of its
# back end are restarted (shutdown --keep-flows, start again): the flow lives in the pinned maps and the
# attached programs meanwhile, and the new batonds adopt it and see it closed.
. "$(dirname "$0")/lib/common.sh"
[ "$BATON_DATAPATH" = ebpf ] || skip "needs the eBPF datapath"
cleanup_hooks+=('for n in 1 2; do batond_alive $n || start_batond $n; done')
path=/n2/big.bin
adopted_lines() { grep -c "adopted [0-9]* handed-off flows" "$root/out/testbed/n$1/batond.log" || true; }
before1=$(adopted_lines 1)
before2=$(adopted_lines 2)
# About 10 s at 5 MB/s: long enough to restart both daemons in the middle.
bg_curl -s -o "$work/body" -w '%{http_code}' --limit-rate 5M --max-time 60 \
  "http://$(node_addr 1):$BATON_PORT$path?$(unique)" > "$work/code"
fetch_pid=$bg_pid
grows "$work/body" 2000000 || fail "the download did not get going"
for n in 1 2; do stop_batond "$n" --keep-flows || fail "node $n's batond did not stop"; done
kill -0 $fetch_pid 2>/dev/null || fail "the download ended while the daemons were down (too fast to prove anything)"
grows "$work/body" 1000000 || fail "the flow stopped while both daemons were down"
for n in 1 2; do start_batond "$n"; done
both_peers_up() { [ "$(peers_up 1)" = 1 ] && [ "$(peers_up 2)" = 1 ]; }
eventually 10 both_peers_up || fail "the restarted daemons did not reconnect"
wait $fetch_pid || fail "curl failed"
[ "$(cat "$work/code")" = 200 ] || fail "status $(cat "$work/code")"
[ "$(sha256sum < "$work/body" | cut -d' ' -f1)" = "$(content_sha $path)" ] || fail "body differs"
[ "$(adopted_lines 1)" -gt "$before1" ] || fail "node 1 did not adopt the flow"
[ "$(adopted_lines 2)" -gt "$before2" ] || fail "node 2 did not adopt the flow"
wait_no_live_flows || fail "the adopted flow was not closed on both nodes"
pass "50 MB byte-exact across a restart of both daemons; the flow was adopted and closed"
