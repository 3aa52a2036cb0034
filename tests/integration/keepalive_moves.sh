#!/usr/bin/env bash
# Multiple handoff: every request of a keep-alive connection reaches a node that holds its content. One
# curl tours, through node 1 over one connection, node 1's own file (served by its stack, watched), node
# 2's, node 3's, node 2's, a large body of node 2 (no move) and node 1's again (the connection moves
# back into the front end's own stack): every body byte-exact, one connection, four moves, and the
# client's capture one ordinary connection (sequence continuity, TSvals never going back, valid
# checksums, no RST). The same under 5% loss each way (seeded, deterministic: iptables' nth match), where
# the first segments after a move get lost too. Then wrk cycles every node's paths (and a shared one)
# over 8 keep-alive connections: only 200s, no socket error, the connections moving all the time. No
# flow is left. Under eBPF, tc watches the boundaries itself and gives batond only the requests for
# another node.
. "$(dirname "$0")/lib/common.sh"
paths="/n1/index.html /n2/small.txt /n3/small.txt /n2/medium.bin /n2/mb.bin /n1/medium.bin"
for p in $paths; do [ -n "$(content_sha "$p")" ] || fail "no $p in the content map"; done
seed=${BATON_LOSS_SEED:-$((RANDOM % 1000))}
echo "loss seed: $seed (replay with BATON_LOSS_SEED=$seed)"
keep=$root/out/captures
mkdir -p "$keep"
ipt() { ip netns exec "$BATON_CLIENT_NS" iptables -w "$@"; }
cleanup_hooks+=('ipt -F INPUT; ipt -F OUTPUT')
for n in $BATON_NODES; do ip netns exec "$(node_ns "$n")" ethtool -K eth0 tx off >/dev/null 2>&1 || true; done
cleanup_hooks+=('for n in $BATON_NODES; do ip netns exec "$(node_ns "$n")" ethtool -K eth0 tx on >/dev/null 2>&1 || true; done')

# tour NAME: the four requests over one connection, captured on the client and checked.
tour() {
  local name=$1 pcap=$work/$1.pcap args=() i=0 before
  before=$(status 1 frontend.migrations)
  nsenter --net="/run/netns/$BATON_CLIENT_NS" tcpdump -B 65536 -p -n -i "$BATON_CLIENT_IF" -s 0 \
    -w "$pcap" "tcp port $BATON_PORT" 2>"$work/$name.tcpdump" &
  local dump=$!
  cleanup_hooks+=("kill $dump 2>/dev/null")
  eventually 5 grep -qs "listening on" "$work/$name.tcpdump" || fail "tcpdump did not start ($name)"
  for p in $paths; do
    args+=(-o "$work/$name-body$i" "http://$(node_addr 1):$BATON_PORT$p")
    i=$((i + 1))
  done
  in_client curl -s --max-time 60 -w '%{http_code} %{num_connects}\n' "${args[@]}" > "$work/$name.curl" ||
    fail "$name: curl failed: $(cat "$work/$name.curl")"
  i=0
  for p in $paths; do
    read -r code connects < <(sed -n "$((i + 1))p" "$work/$name.curl")
    [ "$code" = 200 ] || fail "$name: $p: status $code"
    [ "$connects" = "$([ $i = 0 ] && echo 1 || echo 0)" ] || fail "$name: $p: $connects new connections (not kept)"
    [ "$(sha256sum < "$work/$name-body$i" | cut -d' ' -f1)" = "$(content_sha "$p")" ] || fail "$name: $p: body differs"
    i=$((i + 1))
  done
  local moved=$(( $(status 1 frontend.migrations) - before ))
  [ "$moved" = 4 ] || fail "$name: $moved moves counted, 4 expected"
  sleep 1.5  # tcpdump writes in blocks: let the last one arrive
  kill -INT $dump; wait $dump 2>/dev/null || true
  if ! /usr/bin/python3 "$root/tests/integration/lib/tcp_checker.py" "$pcap" "$(node_addr 1)" "$BATON_PORT" > "$work/$name.check" ||
     [ "$(/usr/bin/python3 -c '
import sys
sys.path.insert(0, sys.argv[2])
from tcp_wire import packets
print(sum(1 for p in packets(sys.argv[1]) if len(p) > 33 and p[9] == 6 and p[33] & 0x04))' "$pcap" "$root/tests/integration/lib")" != 0 ]; then
    cat "$work/$name.check"
    cp "$pcap" "$keep/moves-$name-seed$seed.pcap"
    fail "$name: the client's capture is not one clean connection without RST (kept in out/captures/)"
  fi
}

tour clean
ipt -A INPUT -p tcp --sport "$BATON_PORT" -m statistic --mode nth --every 20 --packet $((seed % 20)) -j DROP
ipt -A OUTPUT -p tcp --dport "$BATON_PORT" -m statistic --mode nth --every 20 --packet $(((seed * 7 + 3) % 20)) -j DROP
for round in 1 2 3; do tour "loss$round"; done
dropped=$(ipt -L -v -x -n | awk '$3 == "DROP" {s += $1} END {print s + 0}')
[ "$dropped" -gt 0 ] || fail "no loss applied"
ipt -F INPUT
ipt -F OUTPUT

printf '%s\n' /n2/small.txt /n3/small.txt /n1/index.html /n2/medium.bin /n3/medium.bin /shared/a.bin > "$work/paths"
before=$(status 1 frontend.migrations)
kernel_before=$(datapath_counter 1 fe_requests_kernel)
slow_before=$(datapath_counter 1 fe_requests_slow)
BATON_WRK_PATHS=$work/paths BATON_WRK_CLOSE=0 in_client wrk -t1 -c8 -d3s --timeout 10s \
  -s "$root/tests/integration/lib/mixed.lua" "http://$(node_addr 1):$BATON_PORT/" > "$work/wrk.out" 2>&1 || true
line=$(grep '^BATON_WRK' "$work/wrk.out" || echo "BATON_WRK requests=0")
for k in connect read write status timeout; do
  v=$(echo "$line" | tr ' ' '\n' | awk -F= -v k=$k '$1 == k {print $2}')
  [ "${v:-0}" = 0 ] || fail "wrk: $v $k errors (${line#BATON_WRK })"
done
requests=$(echo "$line" | tr ' ' '\n' | awk -F= '$1 == "requests" {print $2}')
moved=$(( $(status 1 frontend.migrations) - before ))
kernel=$(( $(datapath_counter 1 fe_requests_kernel) - kernel_before ))
slow=$(( $(datapath_counter 1 fe_requests_slow) - slow_before ))
echo "wrk, keep-alive over every node: ${line#BATON_WRK }; $moved moves; tc sent $kernel requests on itself, gave batond $slow"
if [ "$BATON_DATAPATH" = ebpf ]; then
  # The requests that stay where they are (the shared file on either node) never reach user space, and
  # every move starts with tc giving batond the request.
  [ "$kernel" -gt 0 ] || fail "tc sent no request on by itself"
  [ "$slow" -ge "$moved" ] || fail "$moved moves but tc gave batond only $slow requests"
fi
[ "${requests:-0}" -gt 100 ] || fail "wrk: only ${requests:-0} requests"
# Consecutive requests on a connection name different nodes most of the time (the shared file's holders
# are chosen by load): most requests after a connection's first move it.
[ "$moved" -gt $((requests / 3)) ] || fail "only $moved moves for $requests requests"
wait_no_live_flows 15 || fail "flows left after the connections closed"
# Nor a socket: every web server's connection ended (those a move took away were aborted quietly).
no_open_sockets() {
  local n
  for n in $BATON_NODES; do
    [ -z "$(ip netns exec "$(node_ns "$n")" ss -Htn state established state syn-recv state fin-wait-1 \
      state fin-wait-2 state close-wait state last-ack state closing "( sport = :$BATON_PORT )")" ] || return 1
  done
}
eventually 10 no_open_sockets || {
  for n in $BATON_NODES; do ip netns exec "$(node_ns "$n")" ss -tn "( sport = :$BATON_PORT )" | grep -v TIME-WAIT; done
  fail "sockets left open on the service port"
}
pass "six requests on nodes 1, 2, 3, 2, 2 (1 MiB), 1 over one connection, clean and 3 times under 5% loss (seed $seed): byte-exact, 4 moves each, clean client captures; wrk keep-alive over every node: $requests requests, $moved moves, only 200s"
