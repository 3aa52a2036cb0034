#!/usr/bin/env bash
# The control channel survives a node's batond restart: while node 3's batond is down, node 1 serves its
# requests itself (no stalled connections); when it is back, node 1 reconnects and hands off again.
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
code=$(fetch 1 "/n3/small.txt?$q" "$work/body")
[ "$code" = 404 ] || fail "with node 3 unreachable node 1 should answer itself (404), got $code"
logged 1 "$q" || fail "node 1 did not serve the request itself"

start_batond 3
for _ in $(seq 1 100); do [ "$(peer_up)" = 1 ] && break; sleep 0.1; done
[ "$(peer_up)" = 1 ] || fail "node 1 did not reconnect to node 3"
q=$(unique)
code=$(fetch 1 "/n3/small.txt?$q" "$work/body")
[ "$code" = 200 ] || fail "after the restart: status $code"
logged 3 "$q" || fail "after the restart the request was not handed off to node 3"
wait_no_live_flows || fail "flows left behind"
pass "node 3 down: served locally; node 3 back: reconnected and handing off"
