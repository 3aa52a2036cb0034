#!/usr/bin/env bash
# A request for content that lives only on node 2, sent to node 1, is handed off: answered byte-exact,
# logged by node 2's nginx and not by node 1's.
. "$(dirname "$0")/lib/common.sh"
path=/n2/medium.bin
[ "$(content_holders $path)" = 2 ] || fail "testbed content changed: $path should live on node 2 only"
q=$(unique)
before=$(status 1 frontend.handed_off)
fwd_user=$(status 1 frontend.packets_forwarded)
fwd_kernel=$(datapath_counter 1 fe_forwarded)
rewritten_kernel=$(datapath_counter 2 be_rewritten)
code=$(fetch 1 "$path?$q" "$work/body")
[ "$code" = 200 ] || fail "status $code"
[ "$(sha256sum < "$work/body" | cut -d' ' -f1)" = "$(content_sha $path)" ] || fail "body differs from $path"
logged 2 "$q" || fail "node 2's access log lacks the request"
! grep -q "$q" "$(node_log 1)" || fail "node 1's nginx saw a handed-off request"
[ "$(status 1 frontend.handed_off)" -gt "$before" ] || fail "node 1 did not count a handoff"
# The packets took the path of the datapath under test, not a silent fallback.
case $BATON_DATAPATH in
  ebpf)
    [ "$(datapath_counter 1 fe_forwarded)" -gt "$fwd_kernel" ] || fail "tc ingress on node 1 forwarded nothing"
    [ "$(datapath_counter 2 be_rewritten)" -gt "$rewritten_kernel" ] || fail "tc egress on node 2 rewrote nothing" ;;
  nfqueue)
    [ "$(status 1 frontend.packets_forwarded)" -gt "$fwd_user" ] || fail "node 1 forwarded nothing in user space" ;;
esac
wait_no_live_flows || fail "flows left behind"
pass "handed off to node 2 ($BATON_DATAPATH datapath), byte-exact, logged only by node 2"
