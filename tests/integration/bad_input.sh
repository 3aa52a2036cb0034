#!/usr/bin/env bash
# Bad input gets a clear result: a malformed request is served locally (the web server answers 400)
# (or 505 for an unknown version), is logged as a rate-limited warning and never crashes batond; junk on
# the control port closes that connection with a warning; an unknown path goes to the default node.
. "$(dirname "$0")/lib/common.sh"
addr1=$(node_addr 1)
send_raw() {  # node bytes -> response's first line
  in_client bash -c 'exec 3<>/dev/tcp/$1/$2; printf "$3" >&3; timeout 5 head -n1 <&3' _ "$(node_addr "$1")" "$BATON_PORT" "$2" | tr -d '\r'
}
bad_before=$(status 1 frontend.bad_requests)
log1=$root/out/testbed/n1/batond.log
# The warnings below are rate limited per 10 s: after an earlier run of this test, wait for a fresh window.
last_warning=$({ grep 'unreadable request from' "$log1" || true; } | tail -n 1 | cut -c1-23 | tr T ' ')
if [ -n "$last_warning" ]; then
  wait_ms=$(( $(date -d "$last_warning" +%s%3N) + 10500 - $(date +%s%3N) ))
  [ "$wait_ms" -le 0 ] || sleep "$((wait_ms / 1000)).$(printf %03d $((wait_ms % 1000)))"
fi
from=$(($(file_size "$log1") + 1))
start=$SECONDS
for req in 'GARBAGE\r\n\r\n' 'GET / HTTP/9.9\r\n\r\n' '\x16\x03\x01\x00\x05hello\r\n\r\n' 'GET /a b c HTTP/1.1\r\nHost: x\r\n\r\n'; do
  first=$(send_raw 1 "$req")
  case $first in
    "HTTP/1.1 400"* | "HTTP/1.1 505"*) ;;  # 505: nginx's word for an unknown HTTP version
    *) fail "request '$req' got '$first', wanted nginx's 400 (or 505) from node 1" ;;
  esac
done
[ "$(status 1 frontend.bad_requests)" -ge $((bad_before + 4)) ] || fail "bad requests not counted"
# Each one is a warning in batond's log, naming the client and what is wrong, but a flood of them is not a
# flood of lines: 18 in a row (within two 10 s windows of at most 5 lines each) give 1 to 10 lines.
for i in $(seq 1 14); do send_raw 1 'GARBAGE\r\n\r\n' > /dev/null; done
[ $((SECONDS - start)) -lt 10 ] || fail "18 bad requests took more than 10 s: the log limit cannot be judged"
warned() { tail -c +"$from" "$log1" | grep -c "unreadable request from $BATON_CLIENT_ADDR:[0-9]*->$addr1:$BATON_PORT: "; }
warned_some() { [ "$(warned)" -ge 1 ]; }
eventually 3 warned_some || fail "no warning for a bad request in node 1's log"
[ "$(warned)" -le 10 ] || fail "$(warned) warnings for 18 bad requests: not rate limited"
tail -c +"$from" "$log1" | grep -q "unreadable request from .*: invalid method character; node 1's web server answers it" ||
  fail "the warning does not say what is wrong"
batond_alive 1 || fail "batond on node 1 died"

# Junk on the control port (anyone who reaches it can send it): the connection is closed with a warning
# that names the sender and the fault; the cluster's own connections stay. A frame of another protocol
# version is named as such (what a node of an incompatible release sees).
control1=$(grep -A2 '^id = 1$' "$root/out/testbed/n1/batond.toml" | sed -n 's/^control_address = "\(.*\)"/\1/p')
[ -n "$control1" ] || fail "node 1's control address not found in its config"
for junk in '\x00\x00\x00\x02\x03\x01' 'GET / HTTP/1.1\r\n\r\n'; do
  # Closed (reset: batond drops control connections hard) rather than timed out (124).
  rc=0
  in_client bash -c 'exec 3<>/dev/tcp/${1%:*}/${1#*:}; printf "$2" >&3; timeout 5 cat <&3' _ "$control1" "$junk" \
    > /dev/null 2>&1 || rc=$?
  [ "$rc" != 124 ] || fail "node 1 did not close a control connection that sent junk"
done
tail -c +"$from" "$log1" | grep -q "control: $BATON_CLIENT_ADDR:[0-9]*: protocol error: protocol version 3 (this node speaks 2): connection closed" ||
  fail "no warning naming the other protocol version"
tail -c +"$from" "$log1" | grep -q "control: $BATON_CLIENT_ADDR:[0-9]*: protocol error: bad frame length" ||
  fail "no warning for junk on the control port"
all_peers_up 1 || fail "junk on the control port cost node 1 a peer"

# Unknown path via node 2: the default (node 1) answers, nginx says 404.
q=$(unique)
code=$(fetch 2 "/nothing/here?$q" "$work/body")
[ "$code" = 404 ] || fail "unknown path: status $code"
logged 1 "$q" || fail "unknown path did not go to the default node 1"
# A path outside every rule that the default node holds: byte-exact through node 2.
code=$(fetch 2 "/misc/readme.txt?$(unique)" "$work/readme")
[ "$code" = 200 ] || fail "default content: status $code"
[ "$(sha256sum < "$work/readme" | cut -d' ' -f1)" = "$(content_sha /misc/readme.txt)" ] || fail "default content differs"
for n in $BATON_NODES; do batond_alive "$n" || fail "batond on node $n died"; done
wait_no_live_flows || fail "flows left behind"
pass "malformed requests answered 400 locally, warned of in the log (rate-limited); junk on the control port refused with a warning; unknown paths served by the default node"
