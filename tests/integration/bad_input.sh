#!/usr/bin/env bash
# Bad input gets a clear result: a malformed request is served locally (the web server answers 400)
# (or 505 for an unknown version) and never crashes batond; an unknown path goes to the default node.
. "$(dirname "$0")/lib/common.sh"
addr1=$(node_addr 1)
send_raw() {  # node bytes -> response's first line
  in_client bash -c 'exec 3<>/dev/tcp/$1/$2; printf "$3" >&3; timeout 5 head -n1 <&3' _ "$(node_addr "$1")" "$BATON_PORT" "$2" | tr -d '\r'
}
bad_before=$(status 1 frontend.bad_requests)
for req in 'GARBAGE\r\n\r\n' 'GET / HTTP/9.9\r\n\r\n' '\x16\x03\x01\x00\x05hello\r\n\r\n' 'GET /a b c HTTP/1.1\r\nHost: x\r\n\r\n'; do
  first=$(send_raw 1 "$req")
  case $first in
    "HTTP/1.1 400"* | "HTTP/1.1 505"*) ;;  # 505: nginx's word for an unknown HTTP version
    *) fail "request '$req' got '$first', wanted nginx's 400 (or 505) from node 1" ;;
  esac
done
[ "$(status 1 frontend.bad_requests)" -ge $((bad_before + 4)) ] || fail "bad requests not counted"
batond_alive 1 || fail "batond on node 1 died"

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
pass "malformed requests answered 400 locally; unknown paths served by the default node"
