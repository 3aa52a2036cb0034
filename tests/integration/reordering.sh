#!/usr/bin/env bash
# Segments reordered in both directions after the handoff (and while the request is held): a seeded
# NFQUEUE injector in the client's namespace (tests/tools/reorder_queue) lets 5% of the segments each
# way be overtaken by the next 1 to 3. Downloads and a 1 MB upload through handoffs stay byte-exact, wrk
# sees no errors, and the back end's kernel discards no SACK block (the client's SACKs of the reordered
# data reach it translated into its own sequence space: TcpExtTCPSACKDiscard stays put while it
# uses SACKs). Replay a failure with BATON_REORDER_SEED.
. "$(dirname "$0")/lib/common.sh"
seed=${BATON_REORDER_SEED:-$((RANDOM % 100000))}
echo "reorder seed: $seed (replay with BATON_REORDER_SEED=$seed)"
queue=7
ipt() { ip netns exec "$BATON_CLIENT_NS" iptables -w "$@"; }
nstat2() {  # COUNTER: node 2's absolute value
  ip netns exec "$(node_ns 2)" nstat -asz "$1" | awk -v c="$1" '$1 == c {print $2}'
}
stats=$work/reorder.stats
nsenter --net="/run/netns/$BATON_CLIENT_NS" "$root/build/tests/tools/reorder_queue" --queue $queue \
  --port "$BATON_PORT" --percent 5 --seed "$seed" --stats "$stats" > "$work/reorder.out" 2>&1 &
injector=$!
cleanup_hooks+=("kill $injector 2>/dev/null; wait $injector 2>/dev/null")
cleanup_hooks+=('ipt -D OUTPUT -p tcp --dport $BATON_PORT -j NFQUEUE --queue-num $queue'
                'ipt -D INPUT -p tcp --sport $BATON_PORT -j NFQUEUE --queue-num $queue')
eventually 5 grep -q ready "$work/reorder.out" || fail "the injector did not start: $(cat "$work/reorder.out")"
# No --queue-bypass: without the injector the test's traffic stops instead of passing unreordered.
ipt -A OUTPUT -p tcp --dport "$BATON_PORT" -j NFQUEUE --queue-num $queue
ipt -A INPUT -p tcp --sport "$BATON_PORT" -j NFQUEUE --queue-num $queue
discard_before=$(nstat2 TcpExtTCPSACKDiscard)
# SACK processing on node 2 (blocks shifted, merged, or reordering detected from them).
sack_work() { echo $(( $(nstat2 TcpExtTCPSackShifted) + $(nstat2 TcpExtTCPSackMerged) + \
                      $(nstat2 TcpExtTCPSackShiftFallback) + $(nstat2 TcpExtTCPSACKReorder) )); }
work_before=$(sack_work)

for path in /n2/10m.bin /n2/mb.bin /shared/b.bin /n3/small.txt /n1/medium.bin; do
  for i in 1 2; do
    q=$(unique)
    code=$(fetch 1 "$path?$q" "$work/body") || code=curl-failed
    [ "$code" = 200 ] || fail "$path: status $code"
    [ "$(sha256sum < "$work/body" | cut -d' ' -f1)" = "$(content_sha "$path")" ] || fail "$path: body differs"
  done
done
head -c $((1024 * 1024)) /dev/urandom > "$work/upload"
upload_through_node1 "$work/upload" "1 MB PUT"
printf '/n2/small.txt\n/n3/small.txt\n/n2/64k.bin\n' > "$work/paths"
BATON_WRK_PATHS=$work/paths BATON_WRK_CLOSE=1 in_client wrk -t1 -c10 -d3s --timeout 10s \
  -s "$root/tests/integration/lib/mixed.lua" "http://$(node_addr 1):$BATON_PORT/" > "$work/wrk.out" 2>&1 || true
line=$(grep '^BATON_WRK' "$work/wrk.out" || echo "BATON_WRK requests=0")
echo "wrk: ${line#BATON_WRK }"
for k in connect read write status timeout; do
  v=$(echo "$line" | tr ' ' '\n' | awk -F= -v k=$k '$1 == k {print $2}')
  [ "${v:-0}" = 0 ] || fail "wrk: $k errors ($v)"
done
echo "$line" | grep -q 'requests=[1-9]' || fail "wrk made no requests"

# Every connection closes while the injector still passes packets: the client's rules queue to it
# without a bypass, so once it is gone, a close still under way would never finish.
wait_no_live_flows 20 || fail "flows left after the reordered runs"
kill $injector
wait $injector || fail "the injector failed"
cat "$stats"
read -r out_n out_r in_n in_r < <(tr ' ' '\n' < "$stats" | cut -d= -f2 | xargs)
[ "$out_r" -gt 0 ] && [ "$in_r" -gt 0 ] || fail "nothing was reordered ($(cat "$stats"))"
discarded=$(( $(nstat2 TcpExtTCPSACKDiscard) - discard_before ))
used=$(( $(sack_work) - work_before ))
echo "node 2: SACK blocks used $used, discarded $discarded"
[ "$discarded" = 0 ] || fail "node 2's kernel discarded $discarded SACK blocks: translated wrongly"
[ "$used" -gt 0 ] || fail "node 2's kernel processed no SACK block: the test did not exercise SACK"
pass "byte-exact with ${out_r}/${out_n} client and ${in_r}/${in_n} server segments reordered (seed $seed)"
