#!/usr/bin/env bash
# Requests sent ahead of their answers on one keep-alive connection through node 1, each for content of
# another node than the one before: three in one write (node 2's, node 3's, node 1's own), and three
# each sent while the answer before it is still arriving (before the client acknowledged it: node 2's,
# node 1's, node 3's). Every answer is 200 and byte-exact,
# each request reaches its holder's web server exactly once and no other, the connection moves twice.
. "$(dirname "$0")/lib/common.sh"

# run MODE PATH...: one connection; every request carries a unique query, checked in the access logs.
run() {
  local mode=$1 args=() q p before moved
  shift
  q=$(unique)
  for p in "$@"; do
    [ -n "$(content_sha "$p")" ] || fail "no $p in the content map"
    args+=("$p?$q@$(content_sha "$p")")
  done
  before=$(status 1 frontend.migrations)
  out=$(in_client /usr/bin/python3 "$root/tests/integration/lib/pipelined_client.py" "$(node_addr 1)" \
        "$BATON_PORT" "$mode" "${args[@]}") || fail "$mode: $out"
  echo "$out" | sed "s/^/$mode: /"
  for p in "$@"; do
    holder=$(content_holders "$p")
    logged "$holder" "$p?$q" || fail "$mode: $p not served by node $holder"
    for n in $BATON_NODES; do
      count=$(grep -cF -- "$p?$q" "$(node_log "$n")" || true)
      if [ "$n" = "$holder" ]; then
        [ "$count" = 1 ] || fail "$mode: node $n served $p $count times"
      else
        [ "$count" = 0 ] || fail "$mode: node $n served $p, which node $holder holds"
      fi
    done
  done
  moved=$(( $(status 1 frontend.migrations) - before ))
  [ "$moved" = 2 ] || fail "$mode: $moved moves counted, 2 expected"
}

run pipelined /n2/small.txt /n3/small.txt /n1/medium.bin
run early /n2/medium.bin /n1/medium.bin /n3/small.txt
wait_no_live_flows 15 || fail "flows left after the connections closed"
pass "pipelined requests for nodes 2, 3, 1 and early ones for nodes 2, 1, 3 over one connection: byte-exact, each served once by its holder, 2 moves each"
