#!/usr/bin/env bash
# Node 3 fails three ways in turn under a wrk load through node 1 (a new connection per request for
# content nodes 2 and 3 share, so every request is a handoff): its batond killed, then its web server
# stopped, then its link cut. Each time the time until node 1 stops handing node 3 requests (detection) is
# measured (under one second: timeouts.peer_down_ms, 900 ms), and a wrk run started then has no failed
# request at all: every answer a 200, no socket error.
# Requests in flight to node 3 when it failed may fail (a handoff whose request may have reached it is
# reset, never answered twice): counted, not judged. Node 3 back each time: it serves again, no operator.
. "$(dirname "$0")/lib/common.sh"
[ "$(content_holders /shared/a.bin)" = "2,3" ] || fail "the test needs /shared/a.bin on nodes 2 and 3"
eventually 10 all_peers_up 1 || fail "node 1's peers are not all up"
br=${BATON_CLIENT_NS%-client}-br
nginx3() { ip netns exec "$(node_ns 3)" nginx -c "$root/out/testbed/n3/nginx.conf" "$@"; }
cleanup_hooks+=("ip -n $br link set v-n3 up"
  "pgrep -F $root/out/testbed/n3/nginx.pid >/dev/null 2>&1 || nginx3"
  'batond_alive 3 || start_batond 3')
q=$(unique)
now_ms() { echo $(($(date +%s%N) / 1000000)); }

# load NAME SECONDS: wrk through node 1 (8 connections), every request tagged NAME; summary in $work/NAME.
load() {
  echo "/shared/a.bin?$q-$1" > "$work/paths-$1"
  BATON_WRK_PATHS=$work/paths-$1 BATON_WRK_CLOSE=1 in_client wrk -t2 -c8 -d"$2"s --timeout 5s \
    -s "$root/tests/integration/lib/mixed.lua" "http://$(node_addr 1):$BATON_PORT/" > "$work/$1" 2>&1
}
summary() { grep '^BATON_WRK' "$work/$1" | tr ' ' '\n' | awk -F= -v k="$2" '$1 == k {print $2}'; }
failed() {
  local k n=0
  for k in connect read write timeout status; do n=$((n + $(summary "$1" "$k"))); done
  echo $n
}
# clean NAME: the run had requests and not one failed.
clean() {
  grep -q '^BATON_WRK' "$work/$1" || fail "$1: no summary from wrk: $(tail -3 "$work/$1")"
  [ "$(summary "$1" requests)" -ge 50 ] || fail "$1: only $(summary "$1" requests) requests"
  [ "$(failed "$1")" = 0 ] || fail "$1: $(grep '^BATON_WRK' "$work/$1")"
}
served_by() { grep -c -- "$q-$2" "$(node_log "$1")" || true; }
node3_down() { [ "$(peer_connected 1 3)" = 0 ]; }
node3_refuses() { [ "$(status 3 backend.handoffs_refused)" -gt "$refused_before" ]; }

report=()
# failure MODE: breaks node 3 under load, measures detection, checks a run after it, mends node 3, checks
# that node 3 serves again.
failure() {
  local mode=$1 bg t0 detected at
  load "during-$mode" 4 &
  bg=$!
  eventually 5 grep -q -- "$q-during-$mode" "$(node_log 3)" || fail "$mode: node 3 served nothing before it failed"
  refused_before=$(status 3 backend.handoffs_refused)
  t0=$(now_ms)
  case $mode in
    batond-killed) kill_batond 3; eventually 5 node3_down ;;
    nginx-stopped) nginx3 -s stop; eventually 5 node3_refuses ;;
    link-cut) ip -n "$br" link set v-n3 down; eventually 5 node3_down ;;
  esac || fail "$mode: node 1 still hands node 3 requests 5 s later"
  detected="$(($(now_ms) - t0)) ms (seen by polling status)"
  if [ "$mode" != nginx-stopped ]; then
    # Node 1's own clock: when it logged dropping node 3 (from then on it sends node 3 nothing new).
    at=$(grep "control: connection to node 3 dropped" "$root/out/testbed/n1/batond.log" | tail -1 | cut -d' ' -f1)
    at=$(($(date -d "$at" +%s%N) / 1000000))
    [ "$at" -ge "$t0" ] || fail "$mode: node 1 logged no drop of node 3 after the failure"
    detected="$((at - t0)) ms"
    [ $((at - t0)) -lt 1000 ] || fail "$mode: node 3 marked down only after $detected (timeouts.peer_down_ms is 900)"
  fi
  load "after-$mode" 3
  clean "after-$mode"
  [ "$(served_by 2 "after-$mode")" -gt 0 ] || fail "$mode: node 2 served nothing while node 3 was down"
  if [ "$mode" != nginx-stopped ]; then
    [ "$(served_by 3 "after-$mode")" = 0 ] || fail "$mode: node 3 got requests once marked down"
  fi
  wait "$bg" || true
  report+=("$mode: detected after $detected; $(failed "during-$mode") of $(summary "during-$mode" requests) requests in flight failed, then $(summary "after-$mode" requests) of $(summary "after-$mode" requests) ok")
  case $mode in
    batond-killed) start_batond 3 ;;
    nginx-stopped) nginx3 ;;
    link-cut) ip -n "$br" link set v-n3 up ;;
  esac
  node3_up() { [ "$(peer_connected 1 3)" = 1 ]; }
  eventually 10 node3_up || fail "$mode: node 1 not connected to node 3 again"
  load "back-$mode" 2
  clean "back-$mode"
  [ "$(served_by 3 "back-$mode")" -gt 0 ] || fail "$mode: node 3 serves nothing once back"
}

failure batond-killed
failure nginx-stopped
failure link-cut
printf '%s\n' "${report[@]}"
wait_no_live_flows 20 || { for n in $BATON_NODES; do "$batonctl" -s "$(node_socket $n)" flows; done; fail "flows left"; }
pass "node 3's batond killed, its nginx stopped, its link cut under load: after detection no request failed; node 3 served again each time"
