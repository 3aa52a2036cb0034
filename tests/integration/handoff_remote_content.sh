#!/usr/bin/env bash
# A request for content that lives only on node 2, sent to node 1, is handed off: answered byte-exact,
# logged by node 2's nginx and not by node 1's.
. "$(dirname "$0")/lib/common.sh"
path=/n2/medium.bin
[ "$(content_holders $path)" = 2 ] || fail "testbed content changed: $path should live on node 2 only"
q=$(unique)
before=$(status 1 frontend.handed_off)
code=$(fetch 1 "$path?$q" "$work/body")
[ "$code" = 200 ] || fail "status $code"
[ "$(sha256sum < "$work/body" | cut -d' ' -f1)" = "$(content_sha $path)" ] || fail "body differs from $path"
grep -q "$q" "$(node_log 2)" || fail "node 2's access log lacks the request"
! grep -q "$q" "$(node_log 1)" || fail "node 1's nginx saw a handed-off request"
[ "$(status 1 frontend.handed_off)" -gt "$before" ] || fail "node 1 did not count a handoff"
wait_no_live_flows || fail "flows left behind"
pass "handed off to node 2, byte-exact, logged only by node 2"
