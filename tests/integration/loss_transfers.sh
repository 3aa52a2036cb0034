#!/usr/bin/env bash
# Handed-off transfers under packet loss in both directions (1%, 5%, 10%), with curl and wrk as clients:
# every body byte-exact, and a capture on the client checked segment by segment (checksums, continuous
# sequence space from the SYN/ACK, TSvals that never go back, no RST before the server's FIN).
# Loss is deterministic: iptables' statistic match drops every Nth segment, starting at an offset taken
# from BATON_LOSS_SEED (printed), so a failing run can be replayed. Captures of failures stay in
# out/captures/.
. "$(dirname "$0")/lib/common.sh"
seed=${BATON_LOSS_SEED:-$((RANDOM % 1000))}
echo "loss seed: $seed (replay with BATON_LOSS_SEED=$seed)"
keep=$root/out/captures
mkdir -p "$keep"
ipt() { ip netns exec "$BATON_CLIENT_NS" iptables -w "$@"; }
# Final checksums on the wire: no checksum offload on the nodes while we capture.
for n in $BATON_NODES; do ip netns exec "$(node_ns "$n")" ethtool -K eth0 tx off >/dev/null 2>&1 || true; done
cleanup_hooks+=('for n in $BATON_NODES; do ip netns exec "$(node_ns "$n")" ethtool -K eth0 tx on >/dev/null 2>&1 || true; done')
cleanup_hooks+=('ipt -F INPUT; ipt -F OUTPUT')

run_level() {  # every-nth
  local every=$1 in_off=$(( seed % $1 )) out_off=$(( (seed * 7 + 3) % $1 ))
  ipt -F INPUT
  ipt -F OUTPUT
  ipt -A INPUT -p tcp --sport "$BATON_PORT" -m statistic --mode nth --every "$every" --packet "$in_off" -j DROP
  ipt -A OUTPUT -p tcp --dport "$BATON_PORT" -m statistic --mode nth --every "$every" --packet "$out_off" -j DROP
  local pcap=$work/loss-$every.pcap
  nsenter --net="/run/netns/$BATON_CLIENT_NS" tcpdump -B 65536 -p -n -i "$BATON_CLIENT_IF" -s 0 \
    -w "$pcap" "tcp port $BATON_PORT" 2>"$work/tcpdump.err" &
  local dump=$!
  for _ in $(seq 1 50); do grep -q "listening on" "$work/tcpdump.err" && break; sleep 0.1; done
  local failed=""
  for path in /n2/small.txt /n3/small.txt /n2/64k.bin /n2/mb.bin /shared/b.bin /n2/10m.bin; do
    for i in 1 2 3; do
      # Rate-limited so that the capture keeps up: a checker fed an incomplete capture sees false holes.
      code=$(in_client curl -s -o "$work/body" -w '%{http_code}' --limit-rate 20M --max-time 60 \
             "http://$(node_addr 1):$BATON_PORT$path?$(unique)") || code=curl-failed
      if [ "$code" != 200 ] || [ "$(sha256sum < "$work/body" | cut -d' ' -f1)" != "$(content_sha "$path")" ]; then
        failed="$failed $path($code)"
      fi
    done
  done
  # tcpdump hands packets over in blocks (at the latest after 1 s): let the last block arrive first.
  sleep 1.5
  kill -INT $dump; wait $dump 2>/dev/null || true
  # A capture that lost packets would report holes that are not there: it must be complete.
  if grep -E "[1-9][0-9]* packets dropped by kernel" "$work/tcpdump.err"; then
    failed="$failed capture-incomplete"
  fi
  # wrk as well: small and medium files, a new connection (a handoff) per request.
  printf '/n2/small.txt\n/n3/small.txt\n/n2/64k.bin\n' > "$work/paths"
  BATON_WRK_PATHS=$work/paths BATON_WRK_CLOSE=1 in_client wrk -t1 -c10 -d3s --timeout 10s \
    -s "$root/tests/integration/lib/mixed.lua" "http://$(node_addr 1):$BATON_PORT/" > "$work/wrk.out" 2>&1 || true
  local line
  line=$(grep '^BATON_WRK' "$work/wrk.out" || echo "BATON_WRK requests=0")
  local dropped
  dropped=$(ipt -L -v -x -n | awk '$3 == "DROP" {s += $1} END {print s + 0}')
  echo "1/$every loss: $dropped segments dropped; wrk: ${line#BATON_WRK }"
  for k in connect read write status; do
    v=$(echo "$line" | tr ' ' '\n' | awk -F= -v k=$k '$1 == k {print $2}')
    [ "${v:-0}" = 0 ] || failed="$failed wrk-$k-errors($v)"
  done
  echo "$line" | grep -q 'requests=[1-9]' || failed="$failed wrk-no-requests"
  [ "$dropped" -gt 0 ] || failed="$failed no-loss-applied"
  if ! /usr/bin/python3 "$root/tests/integration/lib/tcp_checker.py" "$pcap" "$(node_addr 1)" "$BATON_PORT" > "$work/check.out"; then
    cat "$work/check.out"
    failed="$failed checker"
  fi
  tail -n 1 "$work/check.out"
  if [ -n "$failed" ]; then
    cp "$pcap" "$keep/loss-$BATON_DATAPATH-1in$every-seed$seed.pcap"
    fail "1/$every loss:$failed (capture kept in out/captures/)"
  fi
}
for every in 100 20 10; do run_level "$every"; done
ipt -F INPUT
ipt -F OUTPUT
wait_no_live_flows 30 || fail "flows left after the lossy runs"
pass "byte-exact under 1%, 5% and 10% loss both ways; client captures clean (seed $seed)"
