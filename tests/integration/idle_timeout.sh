#!/usr/bin/env bash
# The idle timeout: node 2 (the back end) runs with idle_ms = 2000. A handed-off keep-alive connection
# that stays busy beyond that is never cut; once silent, the back end's kernel resets it (SOCK_DESTROY),
# the reset reaches the client translated (the client's socket gets ECONNRESET: nothing is left
# half-open), node 2's socket is gone, and both nodes free the flow (the front end on the back end's
# message, long before its own backstop timer).
. "$(dirname "$0")/lib/common.sh"
idle_ms=2000
conf=$work/n2-idle.toml
cp "$root/out/testbed/n2/batond.toml" "$conf"
printf '\n[timeouts]\nidle_ms = %s\n' "$idle_ms" >> "$conf"
restart_node2() {  # [CONFIG]
  stop_batond 2 || return 1
  start_batond 2 "${1:-}"
  eventually 10 both_up
}
both_up() { [ "$(peers_up 1)$(peers_up 2)" = 11 ]; }
cleanup_hooks+=('restart_node2')
restart_node2 "$conf" || fail "node 2 did not come back with idle_ms = $idle_ms"
wait_no_live_flows || fail "flows left from earlier tests"
closed_before=$(status 2 backend.flows_closed)

out=$work/client.out
in_client /usr/bin/python3 "$root/tests/integration/lib/idle_client.py" "$(node_addr 1)" "$BATON_PORT" \
  /n2/small.txt 5 "$idle_ms" > "$out" 2>&1 || { cat "$out"; fail "idle client"; }
cat "$out"
cport=$(awk '/^port/ {print $2}' "$out")
logged 2 ":$cport \"GET /n2/small.txt?idle=0 " || fail "the connection was not handed off to node 2"
# The front end frees the flow on the back end's message: well within its backstop (idle + 10 s).
wait_no_live_flows 5 || fail "flows left after the idle timeout"
[ "$(status 2 backend.flows_closed)" -gt "$closed_before" ] || fail "node 2 did not count the flow closed"
left=$(ip netns exec "$(node_ns 2)" ss -Htan "( dport = :$cport )" | wc -l)
[ "$left" = 0 ] || { ip netns exec "$(node_ns 2)" ss -tan "( dport = :$cport )"; fail "node 2 still has the socket"; }
left=$(in_client ss -Htan "( sport = :$cport )" | wc -l)
[ "$left" = 0 ] || fail "the client still has its socket"
pass "a busy connection outlived idle_ms; a silent one was reset at the client and freed on both nodes"
