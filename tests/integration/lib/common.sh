# Shared helpers for the integration tests: they drive the testbed only through out/testbed.env, the
# testbed's documented interface, plus batonctl.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
env_file=$root/out/testbed.env
[ -f "$env_file" ] || { echo "FAIL: no testbed ($env_file missing)"; exit 1; }
# shellcheck disable=SC1090
. "$env_file"
batonctl=$root/build/ctl/batonctl
work=$(mktemp -d /tmp/baton-it.XXXXXX)
cleanup_hooks=()
on_exit() {
  for h in "${cleanup_hooks[@]}"; do eval "$h" || true; done
  rm -rf "$work"
}
trap on_exit EXIT

# fail MESSAGE: the test failed. What the cluster held at that moment goes to stderr with it, so that a
# failure seen once (in CI, say) can be understood from its output alone.
fail() {
  echo "FAIL: $*" >&2
  diagnose >&2 || true
  exit 1
}
diagnose() {
  echo "--- at the failure: the client's connections"
  in_client ss -tni state all 2> /dev/null | head -n 24
  local n
  for n in $BATON_NODES; do
    echo "--- node $n: flows"
    "$batonctl" -s "$(node_socket "$n")" flows 2>&1 | head -n 12
    echo "--- node $n: the end of batond's log"
    tail -n 12 "$root/out/testbed/n$n/batond.log" 2> /dev/null
  done
}
pass() { echo "PASS: $*"; }
# skip REASON: not applicable here; ctest reports a skip, not a pass (SKIP_RETURN_CODE in CMakeLists.txt).
skip() { echo "SKIP: $*"; exit 77; }
in_client() { ip netns exec "$BATON_CLIENT_NS" "$@"; }
node_addr() { local v="BATON_NODE_$1_ADDR"; echo "${!v}"; }
node_ns() { local v="BATON_NODE_$1_NS"; echo "${!v}"; }
node_log() { local v="BATON_NODE_$1_ACCESS_LOG"; echo "${!v}"; }
node_socket() { local v="BATON_NODE_$1_SOCKET"; echo "${!v}"; }
content_sha() { awk -F'\t' -v p="$1" '$1 == p {print $3}' "$BATON_CONTENT"; }
content_holders() { awk -F'\t' -v p="$1" '$1 == p {print $4}' "$BATON_CONTENT"; }
unique() { echo "t=$(date +%s%N)$RANDOM"; }

# file_size FILE: bytes in FILE (0 while it does not exist).
file_size() { stat -c %s "$1" 2>/dev/null || echo 0; }
size_at_least() { [ "$(file_size "$1")" -ge "$2" ]; }
# grows FILE BYTES [SECONDS]: waits until FILE (a download under way) holds BYTES more than now. Tests
# wait for this state, not for a time: "the transfer is running", "it went on while X was down".
grows() { eventually "${3:-10}" size_at_least "$1" $(($(file_size "$1") + $2)); }

# status NODE PATH: one value from batonctl status --json, e.g. status 1 frontend.handed_off (list items by
# index: control.peers.0.load)
status() {
  "$batonctl" -s "$(node_socket "$1")" --json status |
    /usr/bin/python3 -c 'import json,sys; d=json.load(sys.stdin)
for k in sys.argv[1].split("."): d = d[int(k)] if isinstance(d, list) else d[k]
print(d)' "$2"
}

# per_worker NODE KEY: KEY of each of NODE's workers (status per_worker: handed_off, handoffs_accepted,
# served_locally, live_flows, load; peers_up only with several workers), space-separated; one value with
# a single worker.
per_worker() {
  "$batonctl" -s "$(node_socket "$1")" --json status | /usr/bin/python3 -c 'import json,sys
d = json.load(sys.stdin)
one = {"handed_off": d["frontend"]["handed_off"], "served_locally": d["frontend"]["served_locally"],
       "handoffs_accepted": d["backend"]["handoffs_accepted"], "live_flows": d["live_flows"], "load": d["load"]}
print(" ".join(str(w[sys.argv[1]]) for w in d.get("per_worker", [one])))' "$2"
}

# datapath_counter NODE NAME: a counter of the eBPF programs (0 under the NFQUEUE datapath).
datapath_counter() {
  "$batonctl" -s "$(node_socket "$1")" --json status |
    /usr/bin/python3 -c 'import json,sys; d=json.load(sys.stdin)
print(d.get("datapath_stats", {}).get("counters", {}).get(sys.argv[1], 0))' "$2"
}

# bg_curl ARGS...: curl in the client's namespace, in the background; sets bg_pid. nsenter execs curl
# itself (ip netns exec would fork), so that the cleanup can stop it: a test that fails must not leave a
# download running into the next test.
bg_curl() {
  nsenter --net="/run/netns/$BATON_CLIENT_NS" curl "$@" &
  bg_pid=$!
  cleanup_hooks+=("kill $bg_pid 2>/dev/null")
}

# eventually SECONDS COMMAND...: polls COMMAND until it succeeds (true) or the time is up (false).
eventually() {
  local deadline=$((SECONDS + $1))
  shift
  until "$@"; do
    [ $SECONDS -lt $deadline ] || return 1
    sleep 0.1
  done
}

# logged NODE TEXT: TEXT shows up in node NODE's access log (within 3 s: nginx writes the line after it
# has sent the response, so a fast client can be done before it is there).
logged() { eventually 3 grep -q -- "$2" "$(node_log "$1")"; }

# upload_through_node1 FILE WHAT: PUTs FILE through node 1 into node 2's upload area (a handoff), checks
# that node 2 stored it byte-exact and removes it; sets upload_port to the client port curl used. Call it
# directly, not in $(...): its failures must end the test.
upload_through_node1() {
  local name out code stored
  name="up-$(unique | tr -dc 0-9)"
  out=$(in_client curl -s -o /dev/null -w '%{http_code} %{local_port}' --max-time 60 -T "$1" \
        "http://$(node_addr 1):$BATON_PORT/n2/uploads/$name") || out=curl-failed
  read -r code upload_port <<< "$out"
  [ "$code" = 201 ] || [ "$code" = 204 ] || fail "$2: PUT status $code"
  stored=$root/out/testbed/www/n2/n2/uploads/$name
  [ -f "$stored" ] || fail "$2: node 2 did not store the upload (not handed off?)"
  cmp -s "$stored" "$1" || fail "$2: the stored body differs from the one sent"
  rm -f "$stored"
}

# fetch NODE PATH OUTFILE: GET through NODE from the client; prints the HTTP status.
fetch() {
  in_client curl -s -o "$3" -w '%{http_code}' --max-time 60 "http://$(node_addr "$1"):$BATON_PORT$2"
}

# Waits until every node reports zero live flows (closing flows drain within the linger time).
wait_no_live_flows() {
  local deadline=$((SECONDS + ${1:-15}))
  while :; do
    local total=0
    for n in $BATON_NODES; do total=$((total + $(status "$n" live_flows))); done
    [ "$total" = 0 ] && return 0
    [ $SECONDS -ge $deadline ] && { for n in $BATON_NODES; do "$batonctl" -s "$(node_socket "$n")" flows; done; return 1; }
    sleep 0.2
  done
}

# start_batond N [CONFIG]: (re)starts node N's batond with the testbed's config (or CONFIG), as
# scripts/testbed does.
start_batond() {
  local d=$root/out/testbed/n$1
  nsenter --net="/run/netns/$(node_ns "$1")" "$root/build/daemon/batond" -c "${2:-$d/batond.toml}" >> "$d/batond.log" 2>&1 &
  echo $! > "$d/batond.pid"
}

# stop_batond N [--keep-flows]: asks node N's batond to stop and waits until it has.
stop_batond() {
  local pid
  pid=$(cat "$root/out/testbed/n$1/batond.pid")
  "$batonctl" -s "$(node_socket "$1")" shutdown ${2:-} > /dev/null
  for _ in $(seq 1 100); do running "$pid" || return 0; sleep 0.05; done
  return 1
}

# kill_batond N: SIGKILL to node N's batond (no chance to clean up), then waits until the process is gone:
# while it dies its status socket still answers, and a batond started meanwhile refuses to run ("status
# socket ... is in use").
kill_batond() {
  local pid
  pid=$(cat "$root/out/testbed/n$1/batond.pid")
  kill -KILL "$pid"
  for _ in $(seq 1 100); do running "$pid" || return 0; sleep 0.05; done
  return 1
}

# restart_node N [CONFIG]: restarts node N's batond (with CONFIG, or the testbed's config) and waits
# until it is connected to every other node again.
restart_node() {
  stop_batond "$1" || return 1
  start_batond "$1" "${2:-}"
  eventually 10 all_peers_up "$1"
}

# running PID: alive and not a zombie (a batond this shell started stays one until reaped).
running() { [ -e "/proc/$1" ] && ! grep -q '^State:.*zombie' "/proc/$1/status" 2>/dev/null; }

# peers_up N: every other node is connected to node N.
peers_up() {
  "$batonctl" -s "$(node_socket "$1")" --json status 2>/dev/null | /usr/bin/python3 -c '
import json, sys; d = json.load(sys.stdin)
print(int(all(p["connected"] for p in d["control"]["peers"])))' 2>/dev/null || echo 0
}

# all_peers_up N: succeeds once every other node is connected to node N (a predicate for eventually).
all_peers_up() { [ "$(peers_up "$1")" = 1 ]; }

# peer_connected N PEER: whether node N's control channel to PEER is up (1 or 0).
peer_connected() {
  "$batonctl" -s "$(node_socket "$1")" --json status 2>/dev/null | /usr/bin/python3 -c '
import json, sys; d = json.load(sys.stdin)
print(int(any(p["id"] == int(sys.argv[1]) and p["connected"] for p in d["control"]["peers"])))' "$2" 2>/dev/null || echo 0
}

# peer_retired NODE PEER: a reload took PEER out of NODE's node list (its connection may stay).
peer_retired() {
  [ "$("$batonctl" -s "$(node_socket "$1")" --json status 2>/dev/null | /usr/bin/python3 -c '
import json, sys; d = json.load(sys.stdin)
print(int(any(p["id"] == int(sys.argv[1]) and p["retired"] for p in d["control"]["peers"])))' "$2" 2>/dev/null)" = 1 ]
}

# hold_busy NODE COUNT: COUNT keep-alive connections from the client held open on NODE after one request
# each, until the test ends (NODE's load then counts them). They bind ports outside the client's
# ephemeral range (32768-60999): on an ephemeral port, a request through another node could draw the same
# port, and its handoff to NODE would meet the held connection's tuple there and be refused as a duplicate
# (port_collision). They close with a reset (linger 0): no TIME_WAIT holds a port for the next test.
hold_busy() {
  ip netns exec "$BATON_CLIENT_NS" /usr/bin/python3 -c '
import socket, struct, sys, time
held = []
for i in range(int(sys.argv[3])):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.bind(("", 61300 + i))
    s.connect((sys.argv[1], int(sys.argv[2])))
    s.sendall(b"GET /n%s/small.txt HTTP/1.1\r\nHost: t\r\n\r\n" % sys.argv[4].encode())
    held.append(s)
time.sleep(120)
' "$(node_addr "$1")" "$BATON_PORT" "$2" "$1" &
  busy_pid=$!
  cleanup_hooks+=("kill $busy_pid 2>/dev/null")
}

# busy_seen NODE COUNT: NODE's load counts COUNT connections, and node 1's view of NODE (its heartbeats)
# does too.
busy_seen() {
  [ "$(status "$1" load)" -ge "$2" ] || return 1
  local seen
  seen=$("$batonctl" -s "$(node_socket 1)" --json status | /usr/bin/python3 -c '
import json, sys
print(next(p["load"] for p in json.load(sys.stdin)["control"]["peers"] if p["id"] == int(sys.argv[1])))' "$1")
  [ "$seen" -ge "$2" ]
}

# control_rto_settled NODE PEER: NODE's control connections to PEER retransmit after at most 300 ms. A
# control connection a few seconds old whose handshake was slow (PEER's link had been cut) starts with
# an RTO near 1 s, which settles to 200 ms plus the round trip over seconds of heartbeats; a test that
# cuts PEER's link counts on the settled state (docs/operations.md, "When a node fails").
control_rto_settled() {
  local rto
  rto=$(ip netns exec "$(node_ns "$1")" ss -tin state established dst "$(node_addr "$2")" | grep -o 'rto:[0-9]*' |
        cut -d: -f2 | sort -n | tail -1)
  [ -n "$rto" ] && [ "$rto" -le 300 ]
}

# back_in_use NODE SECONDS TAG: node 1 is connected to NODE again within SECONDS and hands it its own
# content (while NODE was down node 1 could only have answered 503 for it).
back_in_use() {
  local node=$1 seconds=$2 tag=$3
  connected() { [ "$(peer_connected 1 "$node")" = 1 ]; }
  eventually "$seconds" connected || { echo "node $node not connected again within $seconds s" >&2; return 1; }
  [ "$(fetch 1 "/n$node/small.txt?$tag" "$work/body")" = 200 ] && logged "$node" "$tag"
}

batond_alive() {
  local pidf=$root/out/testbed/n$1/batond.pid
  [ -f "$pidf" ] && running "$(cat "$pidf")"
}
