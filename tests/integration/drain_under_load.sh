#!/usr/bin/env bash
# Drain under load: requests for shared content (nodes 2 and 3) go through node 1 one after the other
# while a download from node 2 runs. `batonctl drain 2`, asked at node 3, reaches node 2 through the
# control channel; once node 1 sees it, no new request goes to node 2, the running download finishes
# byte-exact, and no request fails. `undrain` puts node 2 back in use. Asking for an unknown node fails.
. "$(dirname "$0")/lib/common.sh"
[ "$(content_holders /shared/a.bin)" = "2,3" ] || fail "the test needs /shared/a.bin on nodes 2 and 3"
ctl() { "$batonctl" -s "$(node_socket "$1")" "${@:2}"; }
cleanup_hooks+=('ctl 1 undrain 2 > /dev/null')
draining_seen_by_1() {  # NODE: 1 if node 1 sees NODE draining
  ctl 1 --json status | /usr/bin/python3 -c '
import json, sys; d = json.load(sys.stdin)
print(int(next(p["draining"] for p in d["control"]["peers"] if p["id"] == int(sys.argv[1]))))' "$1"
}

q=$(unique)
# The load: one request after the other, each logging its index and status.
loop() {
  local i=0
  while [ ! -e "$work/stop" ]; do
    i=$((i + 1))
    echo "$i $(fetch 1 "/shared/a.bin?$q-r$i" /dev/null)" >> "$work/codes"
  done
}
loop &
loop_pid=$!
cleanup_hooks+=("touch $work/stop; wait $loop_pid 2> /dev/null")
in_use() { grep -q -- "$q-r" "$(node_log 2)"; }
eventually 10 in_use || fail "node 2 served none of the shared requests before the drain"
bg_curl -s -o "$work/long" --limit-rate 300k "http://$(node_addr 1):$BATON_PORT/n2/mb.bin?$q-long"
long_pid=$bg_pid
grows "$work/long" 100000 10 || fail "the download from node 2 did not start"

ctl 3 drain 2 > /dev/null || fail "batonctl drain 2 at node 3 failed"
seen() { [ "$(draining_seen_by_1 2)" = 1 ]; }
eventually 3 seen || fail "node 1 never learnt that node 2 drains"
last_before=$(tail -n 1 "$work/codes" | cut -d' ' -f1)
[ "$(ctl 2 --json status | /usr/bin/python3 -c 'import json,sys; print(int(json.load(sys.stdin)["draining"]))')" = 1 ] ||
  fail "node 2 does not say it drains"
# Requests go on for a while; those begun after node 1 knew go to node 3 only.
more() { [ "$(tail -n 1 "$work/codes" | cut -d' ' -f1)" -ge $((last_before + 20)) ]; }
eventually 20 more || fail "the requests stalled during the drain"
wait "$long_pid" || fail "the download from node 2 failed during the drain"
[ "$(sha256sum < "$work/long" | cut -d' ' -f1)" = "$(content_sha /n2/mb.bin)" ] || fail "the download differs"
late=$(grep -o -- "$q-r[0-9]*" "$(node_log 2)" | sed "s/$q-r//" | awk -v b="$last_before" '$1 > b + 1' | wc -l)
[ "$late" = 0 ] || fail "$late requests begun after node 1 knew of the drain went to node 2"

ctl 1 undrain 2 > /dev/null || fail "batonctl undrain 2 at node 1 failed"
not_seen() { [ "$(draining_seen_by_1 2)" = 0 ]; }
eventually 3 not_seen || fail "node 1 still sees node 2 draining"
mark=$(tail -n 1 "$work/codes" | cut -d' ' -f1)
back() { grep -o -- "$q-r[0-9]*" "$(node_log 2)" | sed "s/$q-r//" | awk -v m="$mark" '$1 > m' | grep -q .; }
eventually 10 back || fail "node 2 not used again after undrain"
touch "$work/stop"
wait "$loop_pid"
total=$(wc -l < "$work/codes")
bad=$(awk '$2 != 200' "$work/codes" | wc -l)
[ "$bad" = 0 ] || fail "$bad of $total requests failed: $(awk '$2 != 200' "$work/codes" | head -3 | tr '\n' ' ')"

if ctl 1 drain 9 > "$work/out" 2>&1; then fail "draining an unknown node succeeded"; fi
grep -q "not in the cluster" "$work/out" || fail "unclear error for an unknown node: $(cat "$work/out")"
wait_no_live_flows 15 || fail "flows left"
pass "$total shared requests through node 1, none failed; after node 1 learnt of node 2's drain (asked at node 3) none went to node 2, its running download finished byte-exact; undrained, node 2 served again"
