#!/usr/bin/env bash
# Several workers per batond (testbed up --workers W): a new connection per request through node 1 for
# node 2's content spreads over every worker, and node 2 accepts each worker's handoffs in the same
# worker (the kernel's queue rules on both nodes hash the client alike, and each worker's control
# connection goes to the same worker of the peer); a running download's flow sits in the worker the hash
# names on both nodes; a node running another number of workers is refused with a reason naming both
# counts, and content another node holds is still served meanwhile.
. "$(dirname "$0")/lib/common.sh"
[ "${BATON_WORKERS:-1}" -ge 2 ] || skip "the testbed runs one worker (scripts/testbed up --workers 2)"
for n in $BATON_NODES; do eventually 10 all_peers_up "$n" || fail "node $n's peers are not all up"; done
workers=$BATON_WORKERS

minus() { paste -d' ' <(tr ' ' '\n' <<< "$1") <(tr ' ' '\n' <<< "$2") | awk '{printf "%s%d", (NR > 1 ? " " : ""), $1 - $2}'; }

# 1. A load of handoffs spreads over the workers, and the back end's workers take exactly their front
# end counterparts' handoffs.
fe_before=$(per_worker 1 handed_off)
be_before=$(per_worker 2 handoffs_accepted)
q=$(unique)
echo "/n2/small.txt?$q" > "$work/paths"
BATON_WRK_PATHS=$work/paths BATON_WRK_CLOSE=1 in_client wrk -t2 -c20 -d3s --timeout 5s \
  -s "$root/tests/integration/lib/mixed.lua" "http://$(node_addr 1):$BATON_PORT/" > "$work/wrk.out" 2>&1
line=$(grep '^BATON_WRK' "$work/wrk.out") || fail "no summary from wrk: $(tail -3 "$work/wrk.out")"
for k in connect read write timeout status; do
  [[ $line == *" $k=0"* ]] || fail "failed requests under load: $line"
done
fe=$(minus "$(per_worker 1 handed_off)" "$fe_before")
be=$(minus "$(per_worker 2 handoffs_accepted)" "$be_before")
total=$(tr " " "\n" <<< "$fe" | awk "{s += \$1} END {print s}")
[ "$total" -ge 500 ] || fail "only $total handoffs under load (per worker: $fe)"
for h in $fe; do
  [ "$h" -ge $((total / workers / 2)) ] || fail "the workers' shares of $total handoffs are uneven: $fe"
done
[ "$fe" = "$be" ] || fail "node 1's workers handed off $fe, node 2's workers accepted $be: not the same workers"

# 2. A download under way: its flow is in the worker the hash of its client names, on both nodes.
bg_curl -s -o "$work/big" --limit-rate 2M "http://$(node_addr 1):$BATON_PORT/n2/big.bin"
grows "$work/big" 200000 || fail "the download did not start"
port=$(in_client ss -tnH state established "dst $(node_addr 1):$BATON_PORT" | awk '{split($3, a, ":"); print a[2]}' | head -1)
[ -n "$port" ] || fail "no client port for the download"
IFS=. read -r a b c d <<< "$BATON_CLIENT_ADDR"
addr=$(((a << 24) | (b << 16) | (c << 8) | d))
bits=0
while [ $((1 << bits)) -lt "$workers" ]; do bits=$((bits + 1)); done
expect=$(((((addr ^ port) * 0x9E3779B1) & 0xffffffff) >> (32 - bits)))
flow_worker() {
  "$batonctl" -s "$(node_socket "$1")" --json flows | /usr/bin/python3 -c '
import json, sys
print(" ".join(str(f["worker"]) for f in json.load(sys.stdin) if f["client"].endswith(":" + sys.argv[1])))' "$port"
}
[ "$(flow_worker 1)" = "$expect" ] || fail "node 1 holds the download's flow in worker '$(flow_worker 1)', the hash names $expect"
[ "$(flow_worker 2)" = "$expect" ] || fail "node 2 holds the download's flow in worker '$(flow_worker 2)', the hash names $expect"
# Node 2's web server holds the download's connection: every worker counts it in the node's load (worker
# 0 measures it for all, the others read it).
every_worker_counts() { for l in $(per_worker 2 load); do [ "$l" -ge 1 ] || return 1; done; }
eventually 3 every_worker_counts || fail "a worker of node 2 does not count the download in its load: $(per_worker 2 load)"
kill "$bg_pid" 2>/dev/null || true

# 3. Node 3 restarted with one worker: refused by the others, with both counts named; /shared/ content
# (nodes 2 and 3) is served by node 2 meanwhile. Node 3 with the cluster's count again: connected.
# Only if the test ends before node 3 runs the testbed's config again (the hook is evaluated at exit).
node3_restored=0
cleanup_hooks+=('[ "$node3_restored" = 1 ] || { batond_alive 3 && stop_batond 3; start_batond 3; eventually 10 all_peers_up 3; }')
sed 's/^workers = .*/workers = 1/' "$root/out/testbed/n3/batond.toml" > "$work/one-worker.toml"
grep -q '^workers = 1' "$work/one-worker.toml" || fail "the testbed's config names no workers"
restart_node 3 "$work/one-worker.toml" && fail "node 3 with one worker was let in"
refused() { "$batonctl" -s "$(node_socket "$1")" nodes | grep -E "^$2 +down" | grep -q "runs $3 workers"; }
eventually 10 refused 1 3 1 || fail "node 1 does not name node 3's worker count: $("$batonctl" -s "$(node_socket 1)" nodes)"
eventually 10 refused 3 1 "$workers" || fail "node 3 does not name node 1's worker count: $("$batonctl" -s "$(node_socket 3)" nodes)"
q=$(unique)
[ "$(fetch 1 "/shared/a.bin?$q" "$work/a")" = 200 ] || fail "/shared/a.bin through node 1 while node 3 is refused"
[ "$(sha256sum < "$work/a" | cut -d' ' -f1)" = "$(content_sha /shared/a.bin)" ] || fail "/shared/a.bin differs"
logged 2 "$q" || fail "/shared/a.bin was not served by node 2"
restart_node 3 || fail "node 3 with the cluster's workers did not connect"
node3_restored=1
# Every node's every worker, not only node 3's view: the next test starts at once.
for n in $BATON_NODES; do eventually 10 all_peers_up "$n" || fail "node $n does not see every peer up again"; done
pass "handoffs spread over $workers workers ($fe), the same on both nodes; a node with another count refused by name"
