#!/usr/bin/env bash
# 200 concurrent connections for mixed content (wrk, 10 s, a new connection per request so that each is
# a handoff or a local decision) finish with zero socket errors and zero non-2xx answers; afterwards no
# node holds a live flow.
. "$(dirname "$0")/lib/common.sh"
awk -F'\t' '$2 <= 262144 {print $1}' "$BATON_CONTENT" > "$work/paths"
[ "$(wc -l < "$work/paths")" -ge 5 ] || fail "too few paths"
before=$(status 1 frontend.handed_off)
BATON_WRK_PATHS=$work/paths BATON_WRK_CLOSE=1 in_client wrk -t2 -c200 -d10s --timeout 10s \
  -s "$root/tests/integration/lib/mixed.lua" "http://$(node_addr 1):$BATON_PORT/" > "$work/wrk.out" 2>&1 || {
  cat "$work/wrk.out"; fail "wrk failed"; }
cat "$work/wrk.out"
line=$(grep '^BATON_WRK' "$work/wrk.out") || fail "no summary from wrk"
get() { echo "$line" | tr ' ' '\n' | awk -F= -v k="$1" '$1 == k {print $2}'; }
[ "$(get requests)" -gt 200 ] || fail "only $(get requests) requests"
for k in connect read write timeout status; do
  if [ "$(get $k)" != 0 ]; then
    # Enough to tell what went wrong: the answers that were not 2xx, and what each node counted.
    for n in $BATON_NODES; do
      echo "node $n, answers that were not 2xx:"; awk '$5 !~ /^2/' "$(node_log "$n")" | tail -n 5
      "$batonctl" -s "$(node_socket "$n")" status
    done
    fail "$k errors: $(get $k)"
  fi
done
handed=$(( $(status 1 frontend.handed_off) - before ))
[ "$handed" -gt 100 ] || fail "only $handed handoffs during the run"
wait_no_live_flows 20 || fail "live flows left after the run"
pass "$(get requests) requests, $handed handed off, no errors, no flows left"
