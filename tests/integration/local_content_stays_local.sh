#!/usr/bin/env bash
# A request for content the front end holds is served by it and never handed off.
. "$(dirname "$0")/lib/common.sh"
path=/n1/small.txt
q=$(unique)
before=$(status 1 frontend.handed_off)
local_before=$(status 1 frontend.served_locally)
code=$(fetch 1 "$path?$q" "$work/body")
[ "$code" = 200 ] || fail "status $code"
[ "$(sha256sum < "$work/body" | cut -d' ' -f1)" = "$(content_sha $path)" ] || fail "body differs"
logged 1 "$q" || fail "node 1's access log lacks the request"
for n in $BATON_NODES; do
  [ "$n" = 1 ] && continue
  ! grep -q "$q" "$(node_log "$n")" || fail "node $n saw a local request"
done
[ "$(status 1 frontend.handed_off)" = "$before" ] || fail "a local request was handed off"
[ "$(status 1 frontend.served_locally)" -gt "$local_before" ] || fail "not counted as served locally"
pass "served by node 1 itself"
