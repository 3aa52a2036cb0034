#!/usr/bin/env bash
# Every way of ending a handed-off connection: client FIN first, back-end FIN first, client RST (after
# the response and in the middle of one), a back-end RST (data after its close), a keep-alive connection with several requests, a client that
# half-closes right after its request (still handed off by that request), and the
# back-end web server killed mid-response. After each: both nodes free the flow (live flows back to
# zero), the front end keeps no half-open connection (no SYN_RECV), and a new connection from the same
# client port (TIME_WAIT reuse) is handed off again and works.
. "$(dirname "$0")/lib/common.sh"
py=$root/tests/integration/lib/close_modes.py
small=/n2/small.txt
big=/n2/10m.bin
no_syn_recv() {
  local n
  n=$(ip netns exec "$(node_ns 1)" ss -Htan state syn-recv "( sport = :$BATON_PORT )" | wc -l)
  [ "$n" = 0 ] || { ip netns exec "$(node_ns 1)" ss -tan state syn-recv; return 1; }
}
# The client may reuse its own TIME_WAIT (client FIN first) for the same 4-tuple: a client-side setting.
ip netns exec "$BATON_CLIENT_NS" sysctl -qw net.ipv4.tcp_tw_reuse=1
port=41000
for mode in client-fin server-fin client-rst server-rst keepalive half-close client-rst-mid; do
  port=$((port + 1))
  path=$small
  [ "$mode" = client-rst-mid ] && path=$big
  before=$(status 1 frontend.handed_off)
  out=$(in_client /usr/bin/python3 "$py" "$(node_addr 1)" "$BATON_PORT" "$path" "$mode" "$port" "$(content_sha $path)") ||
    fail "$mode: $out"
  [ "$(status 1 frontend.handed_off)" -gt "$before" ] || fail "$mode: not handed off"
  wait_no_live_flows 15 || fail "$mode: live flows left"
  no_syn_recv || fail "$mode: the front end kept a half-open connection"
  # The same client port again: the client reuses its TIME_WAIT (if any; tcp_tw_reuse wants a second
  # between timestamps) for a new handoff, which the back end accepts over its own TIME_WAIT. Not a wait
  # for some state: the kernel's rule is about time.
  sleep 1.1
  again=$(in_client /usr/bin/python3 "$py" "$(node_addr 1)" "$BATON_PORT" "$small" server-fin "$port" "$(content_sha $small)") ||
    fail "$mode: reusing port $port: $again"
  wait_no_live_flows 15 || fail "$mode: live flows left after port reuse"
  # Nothing half-open on the client either: no connection of this port in a state other than TIME_WAIT.
  left=$(ip netns exec "$BATON_CLIENT_NS" ss -Htan "( sport = :$port )" | grep -v TIME-WAIT || true)
  [ -z "$left" ] || fail "$mode: the client kept a connection open: $left"
  echo "$mode: $out; reused port: $again"
done

# The back end's nginx killed in the middle of a response: the client sees the connection end (RST or
# short body), both nodes free the flow, and nginx comes back for the next test.
nginx_conf=$root/out/testbed/n2/nginx.conf
cleanup_hooks+=('ip netns exec "$(node_ns 2)" nginx -c "$nginx_conf" 2>/dev/null || true')
# 50 MB: more than the socket buffers on both sides hold, so that the kill really cuts the response.
bg_curl -s -o "$work/big" --limit-rate 4M --max-time 40 "http://$(node_addr 1):$BATON_PORT/n2/big.bin?$(unique)"
fetch=$bg_pid
grows "$work/big" 1000000 || fail "server killed: the download did not get going"
kill -KILL $(ip netns pids "$(node_ns 2)" | while read -r p; do grep -q nginx "/proc/$p/comm" 2>/dev/null && echo "$p"; done)
wait $fetch && fail "the download completed although the server was killed"
wait_no_live_flows 20 || fail "server killed: live flows left"
no_syn_recv || fail "server killed: half-open connection on the front end"
ip netns exec "$(node_ns 2)" nginx -c "$nginx_conf"
code=$(fetch 1 "$small?$(unique)" "$work/body")
[ "$code" = 200 ] || fail "after nginx restart: status $code"
pass "FIN either side, RST, keep-alive and a killed server all end cleanly; ports are reusable"
