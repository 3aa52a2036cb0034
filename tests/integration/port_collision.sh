#!/usr/bin/env bash
# A client port in use towards a back end directly, reused at the same time towards a front end whose
# request belongs on that back end: there both connections have the same 4-tuple. The live direct
# connection must not be touched (neither the replayed SYN nor the TIME_WAIT clearing may hurt it), and
# the request through the front end is answered at once by the front end itself (refused as a
# duplicate, and no other node holds /n2/: batond answers 503, which a client retries from another port)
# instead of being reset after handoff_ms.
. "$(dirname "$0")/lib/common.sh"
refused=$(status 2 backend.handoffs_refused)
q=$(unique)
# A port outside the client's ephemeral range (32768-60999): no earlier test's connection (a TIME_WAIT of
# wrk's, which did not set SO_REUSEADDR) can hold it.
out=$(in_client /usr/bin/python3 "$root/tests/integration/lib/port_collision.py" "$BATON_CLIENT_ADDR" 61234 \
      "$(node_addr 1)" "$(node_addr 2)" "$BATON_PORT" /n2/small.txt "$q") || fail "$out"
echo "$out"
read -r status secs <<< "$(echo "$out" | sed -E 's/through the front end: ([0-9]+) after ([0-9.]+) s.*/\1 \2/')"
[ "$status" = 503 ] || fail "status $status: expected node 1's own answer (503)"
! grep -q -- "$q" "$(node_log 1)" || fail "node 1's web server saw a request it cannot serve"
! grep -q "$q" "$(node_log 2)" || fail "node 2 served it over the live connection's tuple"
awk -v s="$secs" 'BEGIN {exit !(s < 1.5)}' || fail "answered after $secs s: the handoff timed out instead of being refused"
[ "$(status 2 backend.handoffs_refused)" -gt "$refused" ] || fail "node 2 did not refuse the handoff"
wait_no_live_flows || fail "flows left behind"
pass "a port colliding with a live direct connection: refused at once, answered 503 by the front end, direct connection intact"
