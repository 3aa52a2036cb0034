#!/usr/bin/env bash
# A node whose batond runs but whose web server is down refuses handoffs (its replayed SYN is reset), and
# the front end sends each refused connection on to another holder: with node 2's nginx stopped, shared
# content (nodes 2 and 3) through node 1 is served by node 3, every request 200, and content only node 2
# holds is answered 503 by node 1 (batond itself, on a socket restored where the connection stands: no
# node can serve it, and node 1's web server would say 404). nginx back: node 2 serves again.
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
# Nobody else holds /n2/: 503, a HEAD's without a body; the connection closes cleanly (curl reports no
# error), nothing reaches node 1's web server.
code=$(fetch 1 "/n2/small.txt?$q-only" "$work/body")
[ "$code" = 503 ] || fail "content only node 2 holds, its web server down: status $code, not 503"
grep -q "No server of this cluster" "$work/body" || fail "the 503's body: $(head -c 200 "$work/body")"
head=$(in_client curl -sS -I --max-time 10 "http://$(node_addr 1):$BATON_PORT/n2/small.txt?$q-head" 2>&1) ||
  fail "HEAD: curl failed: $head"
[[ $head == "HTTP/1.1 503 "* ]] || fail "HEAD: $(echo "$head" | head -1)"
grep -q -- "$q-only\|$q-head" "$(node_log 1)" && fail "node 1's web server saw a request it cannot serve"
[ "$(status 1 frontend.answers_failed)" = 0 ] || fail "an answer failed: $(grep -i 'cannot answer' "$root/out/testbed/n1/batond.log" | tail -1)"
retried=$(( $(status 1 frontend.handoff_retried) - retried_before ))
# Node 2 is as loaded as node 3 and first in the map: dispatch picks it, it refuses, node 3 takes over.
[ "$retried" -ge 1 ] || fail "no handoff was sent on to another holder"

ngx
nginx_up() { [ "$(fetch 2 /n2/small.txt "$work/body")" = 200 ]; }
eventually 5 nginx_up || fail "node 2's nginx did not come back"
code=$(fetch 1 "/n2/small.txt?$q-back" "$work/body")
[ "$code" = 200 ] && logged 2 "$q-back" || fail "node 2 not serving again once its web server is back (status $code)"
wait_no_live_flows 15 || fail "flows left"
pass "node 2's web server down: 6 shared requests through node 1 all 200, served by node 3 ($retried handoffs sent on after node 2 refused), its own content answered 503 (GET and HEAD); node 2 serves again once it is back"
