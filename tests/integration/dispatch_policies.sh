#!/usr/bin/env bash
# Each dispatch policy routes as docs/dispatch.md says, through node 1 restarted with one rule per policy
# (made-up paths: the web servers answer 404, and their access logs say which node was asked):
# - lard over nodes 2 and 3: each target stays on one node, the targets spread over both, and a target
#   moves once its node holds more than lard_high (12) connections while the other holds fewer than
#   lard_low (2) (the test's own requests, a few at a time, never come near);
# - hash over nodes 1, 2 and 3: a key stays on its node; with node 3 unreachable, only node 3's keys move;
# - least-conn over nodes 2 and 3: both take requests;
# - round-robin over nodes 2 and 3: strictly in turn.
. "$(dirname "$0")/lib/common.sh"
conf=$work/n1-policies.toml
cp "$root/out/testbed/n1/batond.toml" "$conf"
cat >> "$conf" << 'EOF'

[[content.rules]]
prefix = "/pol-lard/"
policy = "lard"
nodes = [2, 3]

[[content.rules]]
prefix = "/pol-hash/"
policy = "hash"

[[content.rules]]
prefix = "/pol-lc/"
policy = "least-conn"
nodes = [2, 3]

[[content.rules]]
prefix = "/pol-rr/"
policy = "round-robin"
nodes = [2, 3]

[dispatch]
lard_low = 2
lard_high = 12
hash_balance = 10
EOF
connected_to() { [ "$(peer_connected 1 "$1")" = 1 ]; }
cleanup_hooks+=('restart_node 1')
restart_node 1 "$conf" || fail "node 1 did not come back with the policy rules"

served_somewhere() { grep -qs -- "$1" "$(node_log 1)" "$(node_log 2)" "$(node_log 3)"; }
# who TAG: the node whose web server logged the request tagged TAG.
who() {
  eventually 3 served_somewhere "$1" || { echo none; return; }
  for n in 1 2 3; do grep -qs -- "$1" "$(node_log "$n")" && { echo "$n"; return; }; done
}
# ask PATH TAG: GET through node 1; prints the node that served it.
ask() {
  fetch 1 "$1?$2" "$work/body" > /dev/null
  who "$2"
}
q=$(unique)

# LARD: locality, spread.
declare -A home
used=""
for t in 0 1 2 3 4 5; do
  for r in 1 2 3; do
    n=$(ask "/pol-lard/t$t" "$q-l$t-$r")
    [ "$n" = 2 ] || [ "$n" = 3 ] || fail "lard target t$t request $r served by node $n, not by 2 or 3"
    [ "$r" = 1 ] && home[$t]=$n
    [ "$n" = "${home[$t]}" ] || fail "lard target t$t moved from node ${home[$t]} to $n without load"
  done
  used="$used ${home[$t]}"
done
case "$used" in *2*) ;; *) fail "lard: no target on node 2 ($used)" ;; esac
case "$used" in *3*) ;; *) fail "lard: no target on node 3 ($used)" ;; esac

# LARD: t0's node holds 14 connections (over lard_high), the other none (under lard_low).
busy=${home[0]}
idle=$((5 - busy))
holders=()
for i in $(seq 1 14); do
  bg_curl -s -o /dev/null --limit-rate 2k "http://$(node_addr "$busy"):$BATON_PORT/n$busy/medium.bin?$q-hold$i"
  holders+=("$bg_pid")
done
peer_load() {
  "$batonctl" -s "$(node_socket 1)" --json status | /usr/bin/python3 -c '
import json, sys; d = json.load(sys.stdin)
print(next(p["load"] for p in d["control"]["peers"] if p["id"] == int(sys.argv[1])))' "$1"
}
own_load() { "$batonctl" -s "$(node_socket "$1")" --json status | /usr/bin/python3 -c 'import json, sys; print(json.load(sys.stdin)["load"])'; }
busy_knows() { [ "$(own_load "$busy")" -ge 14 ]; }
eventually 10 busy_knows || fail "node $busy never counted the 14 connections (load $(own_load "$busy"))"
# How fresh node 1's view is: from node $busy's own count to node 1's view of it (docs/dispatch.md says
# at most heartbeat_ms, 200 ms, plus a round trip, after the count).
counted=$(date +%s%N)
busy_seen() { [ "$(peer_load "$busy")" -ge 14 ] && [ "$(peer_load "$idle")" -lt 2 ]; }
eventually 5 busy_seen || fail "node 1 never saw node $busy's 14 connections (load $(peer_load "$busy"))"
fresh_ms=$((($(date +%s%N) - counted) / 1000000))
n=$(ask /pol-lard/t0 "$q-l0-moved")
[ "$n" = "$idle" ] || fail "lard: t0 stayed on overloaded node $busy (served by $n) while node $idle was idle"
kill "${holders[@]}" 2> /dev/null || true
wait "${holders[@]}" 2> /dev/null || true

# Hash: stickiness over three nodes, then node 3 unreachable.
declare -A key_home
for k in 0 1 2 3 4 5 6 7 8; do
  key_home[$k]=$(ask "/pol-hash/k$k" "$q-h$k-1")
  n=$(ask "/pol-hash/k$k" "$q-h$k-2")
  [ "$n" = "${key_home[$k]}" ] || fail "hash key k$k served by ${key_home[$k]}, then by $n"
done
homes="${key_home[*]}"
for n in 1 2 3; do
  case "$homes" in *$n*) ;; *) fail "hash: no key on node $n ($homes)" ;; esac
done
cleanup_hooks+=('batond_alive 3 || start_batond 3')
stop_batond 3 || fail "node 3's batond did not stop"
gone3() { [ "$(peer_connected 1 3)" = 0 ]; }
eventually 5 gone3 || fail "node 1 still sees node 3"
for k in 0 1 2 3 4 5 6 7 8; do
  n=$(ask "/pol-hash/k$k" "$q-h$k-3")
  if [ "${key_home[$k]}" = 3 ]; then
    [ "$n" = 1 ] || [ "$n" = 2 ] || fail "hash key k$k of node 3 went to node $n"
  else
    [ "$n" = "${key_home[$k]}" ] || fail "hash key k$k moved from node ${key_home[$k]} to $n when node 3 went"
  fi
done
start_batond 3
eventually 10 connected_to 3 || fail "node 3 did not come back"

# Least connections: both nodes.
lc=""
for i in 1 2 3 4 5 6; do lc="$lc $(ask /pol-lc/x "$q-c$i")"; done
case "$lc" in *2*3* | *3*2*) ;; *) fail "least-conn used one node only ($lc)" ;; esac

# Round robin: strictly in turn.
rr=""
for i in 1 2 3 4; do rr="$rr $(ask /pol-rr/x "$q-rr$i")"; done
[ "$rr" = " 2 3 2 3" ] || fail "round robin went$rr"

wait_no_live_flows 15 || fail "flows left"
pass "lard: 6 targets stayed put over nodes ($used), t0 moved off overloaded node $busy (node 1 saw its load ${fresh_ms} ms after node $busy counted it); hash: 9 keys on nodes ($homes), only node 3's moved when it went; least-conn:$lc; round robin:$rr"
