#!/usr/bin/env bash
# The control channel survives a node's batond restart: while node 3's batond is down, node 1 answers
# requests for its content itself, at once and truthfully (503: no node can serve them; not a 404 from
# its own web server, nor a stalled connection); when it is back, node 1 reconnects and hands off again.
. "$(dirname "$0")/lib/common.sh"
# Whatever happens here, node 3 ends with a batond running, as the testbed fixture expects.
cleanup_hooks+=('batond_alive 3 || start_batond 3')
peer_up() { "$batonctl" -s "$(node_socket 1)" --json status | /usr/bin/python3 -c '
import json, sys; d = json.load(sys.stdin)
print(int(any(p["id"] == 3 and p["connected"] for p in d["control"]["peers"])))'; }

stop_batond 3 || fail "node 3's batond did not stop"
for _ in $(seq 1 50); do [ "$(peer_up)" = 0 ] && break; sleep 0.1; done
[ "$(peer_up)" = 0 ] || fail "node 1 still sees node 3 after its batond stopped"
q=$(unique)
answered_before=$(status 1 frontend.answered_unavailable)
code=$(fetch 1 "/n3/small.txt?$q" "$work/body")
[ "$code" = 503 ] || fail "with node 3 unreachable node 1 should answer 503, got $code"
grep -q "No server of this cluster" "$work/body" || fail "the 503's body: $(head -c 200 "$work/body")"
grep -q -- "$q" "$(node_log 1)" && fail "node 1's web server saw the request (it would say 404)"
[ "$(status 1 frontend.answered_unavailable)" = $((answered_before + 1)) ] || fail "answered_unavailable not counted"
[ "$(status 1 frontend.answers_failed)" = 0 ] || fail "an answer failed: $(grep -i 'cannot answer' "$root/out/testbed/n1/batond.log" | tail -1)"

start_batond 3
for _ in $(seq 1 100); do [ "$(peer_up)" = 1 ] && break; sleep 0.1; done
[ "$(peer_up)" = 1 ] || fail "node 1 did not reconnect to node 3"
q=$(unique)
code=$(fetch 1 "/n3/small.txt?$q" "$work/body")
[ "$code" = 200 ] || fail "after the restart: status $code"
logged 3 "$q" || fail "after the restart the request was not handed off to node 3"
wait_no_live_flows || fail "flows left behind"
pass "node 3 down: its content answered 503 by node 1; node 3 back: reconnected and handing off"
