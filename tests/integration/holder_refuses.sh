#!/usr/bin/env bash
# A node whose batond runs but whose web server is down refuses handoffs (its replayed SYN is reset), and
# the front end sends each refused connection on to another holder: with node 2's nginx stopped, shared
# content (nodes 2 and 3) through node 1 is served by node 3, every request 200. nginx back: node 2
# serves again.
. "$(dirname "$0")/lib/common.sh"
conf=$root/out/testbed/n2/nginx.conf
ngx() { ip netns exec "$(node_ns 2)" nginx -c "$conf" "$@"; }
[ "$(content_holders /shared/a.bin)" = "2,3" ] || fail "the test needs /shared/a.bin on nodes 2 and 3"
cleanup_hooks+=("pgrep -F $root/out/testbed/n2/nginx.pid >/dev/null 2>&1 || ip netns exec $(node_ns 2) nginx -c $conf")
retried_before=$(status 1 frontend.handoff_retried)
ngx -s stop
nginx_gone() { ! pgrep -F "$root/out/testbed/n2/nginx.pid" > /dev/null 2>&1; }
eventually 5 nginx_gone || fail "node 2's nginx did not stop"

q=$(unique)
for i in 1 2 3 4 5 6; do
  code=$(fetch 1 "/shared/a.bin?$q-$i" "$work/body")
  [ "$code" = 200 ] || fail "request $i with node 2's web server down: status $code"
  [ "$(sha256sum < "$work/body" | cut -d' ' -f1)" = "$(content_sha /shared/a.bin)" ] || fail "request $i: body differs"
done
for i in 1 2 3 4 5 6; do logged 3 "$q-$i" || fail "request $i not served by node 3"; done
retried=$(( $(status 1 frontend.handoff_retried) - retried_before ))
# Node 2 is as loaded as node 3 and first in the map: dispatch picks it, it refuses, node 3 takes over.
[ "$retried" -ge 1 ] || fail "no handoff was sent on to another holder"

ngx
nginx_up() { [ "$(fetch 2 /n2/small.txt "$work/body")" = 200 ]; }
eventually 5 nginx_up || fail "node 2's nginx did not come back"
code=$(fetch 1 "/n2/small.txt?$q-back" "$work/body")
[ "$code" = 200 ] && logged 2 "$q-back" || fail "node 2 not serving again once its web server is back (status $code)"
wait_no_live_flows 15 || fail "flows left"
pass "node 2's web server down: 6 shared requests through node 1 all 200, served by node 3 ($retried handoffs sent on after node 2 refused); node 2 serves again once it is back"
