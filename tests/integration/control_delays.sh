#!/usr/bin/env bash
# The control channel slowed or stalled (its segments dropped on the back end, so TCP retransmits them):
#   - HANDOFF_ACK delayed by a retransmission: the handoff completes, byte-exact;
#   - HANDOFF_ACK delayed past handoff_ms: the front end aborts (the client sees a reset, never two
#     answers), the back end is told to let go once the channel is back, no state is left anywhere, and
#     the next request works;
#   - FLOW_CLOSED delayed: both nodes still end up with no live flow.
. "$(dirname "$0")/lib/common.sh"
ipt2() { ip netns exec "$(node_ns 2)" iptables -w "$@"; }
cleanup_hooks+=('ipt2 -F OUTPUT')
control_port=7700
drop_next_control_segment() {
  ipt2 -F OUTPUT
  ipt2 -A OUTPUT -p tcp --sport "$control_port" -m statistic --mode nth --every 1000000 --packet 0 -j DROP
  ipt2 -A OUTPUT -p tcp --dport "$control_port" -m statistic --mode nth --every 1000000 --packet 0 -j DROP
}
path=/n2/medium.bin

# dropped: segments the rules above dropped so far.
dropped() { ipt2 -L OUTPUT -v -x -n | awk '$3 == "DROP" {n += $1} END {print n + 0}'; }
# The first segment node 2 sends to node 1 (which dialled it) whose first frame is a HANDOFF_ACK
# (u32 | version | type 4: the type is the TCP payload's sixth byte).
drop_next_handoff_ack() {
  ipt2 -F OUTPUT
  ipt2 -A OUTPUT -p tcp --sport "$control_port" -m u32 --u32 "0>>22&0x3C@12>>26&0x3C@4>>16&0xFF=4" \
    -m statistic --mode nth --every 1000000 --packet 0 -j DROP
}

# 1. The handoff ack lost once: it comes a retransmission later, and the handoff completes.
drop_next_handoff_ack
code=$(fetch 1 "$path?$(unique)" "$work/body")
[ "$code" = 200 ] || fail "delayed ack: status $code"
[ "$(dropped)" = 1 ] || fail "delayed ack: the rule dropped $(dropped) handoff acks, wanted 1"
[ "$(sha256sum < "$work/body" | cut -d' ' -f1)" = "$(content_sha $path)" ] || fail "delayed ack: body differs"
ipt2 -F OUTPUT
wait_no_live_flows 15 || fail "delayed ack: flows left"
echo "handoff ack delayed by a retransmission: byte-exact"

# 2. The channel stalls past handoff_ms (2 s): abort everywhere.
aborted=$(status 1 frontend.handoffs_aborted)
ipt2 -A OUTPUT -p tcp --sport "$control_port" -j DROP
ipt2 -A OUTPUT -p tcp --dport "$control_port" -j DROP
set +e
in_client curl -s -o "$work/body" -w '%{http_code}' --max-time 10 "http://$(node_addr 1):$BATON_PORT$path?$(unique)" > "$work/code"
rc=$?
set -e
ipt2 -F OUTPUT
[ "$(status 1 frontend.handoffs_aborted)" -gt "$aborted" ] || fail "stalled channel: the front end did not abort"
if [ $rc = 0 ] && [ "$(cat "$work/code")" = 200 ]; then
  # Only acceptable if the body is whole and right (the reset reached the client after the answer).
  [ "$(sha256sum < "$work/body" | cut -d' ' -f1)" = "$(content_sha $path)" ] || fail "stalled channel: a corrupt 200"
fi
eventually 10 all_peers_up 1 || fail "stalled channel: the control channel did not come back"
wait_no_live_flows 20 || fail "stalled channel: flows left behind"
code=$(fetch 1 "$path?$(unique)" "$work/body")
[ "$code" = 200 ] || fail "after the stall: status $code"
echo "handoff ack past the timeout: aborted (curl exit $rc), nothing left, next request fine"

# 3. FLOW_CLOSED delayed: a slow download whose close notification loses a segment.
rm -f "$work/body"
bg_curl -s -o "$work/body" --limit-rate 2M --max-time 30 "http://$(node_addr 1):$BATON_PORT/n2/mb.bin?$(unique)"
fetch_pid=$bg_pid
grows "$work/body" 100000 || fail "delayed close: the download did not get going"
drop_next_control_segment
wait $fetch_pid || fail "delayed close: curl failed"
ipt2 -F OUTPUT
wait_no_live_flows 20 || fail "delayed close: flows left behind"
echo "flow-closed delayed: both nodes free the flow"
pass "delayed and stalled control messages: completed, or aborted cleanly, never served twice"
