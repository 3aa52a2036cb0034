#!/usr/bin/env bash
# A node taken out of the cluster by a reload while a handoff to it is pending: its acknowledgement
# arrives after the reload, and the connection is served all the same (the front end still knows the
# node's address: the translation must not send the client's packets nowhere).
# Node 3's HANDOFF_ACKs are held back (its control segments that start with one are dropped, so TCP
# retransmits them); node 1 hands a request for node 3's content to it, reloads a node list without
# node 3 (SIGHUP), then node 3's segments go through again.
. "$(dirname "$0")/lib/common.sh"
orig=$root/out/testbed/n1/batond.toml
conf=$work/n1.toml
ipt3() { ip netns exec "$(node_ns 3)" iptables -w "$@"; }
cleanup_hooks+=('ipt3 -F OUTPUT' 'restart_node 1')
# Node 1 waits 5 s before it calls a silent peer down (node 3's heartbeats queue behind the held ack).
with_timeouts() { cp "$orig" "$conf.new" && printf '\n[timeouts]\npeer_down_ms = 5000\n' >> "$conf.new" && mv "$conf.new" "$conf"; }
with_timeouts
restart_node 1 "$conf" || fail "node 1 did not start with the test's config"

# Segments from node 3's control port whose first frame is a HANDOFF_ACK (type 4: the payload's sixth byte).
ipt3 -A OUTPUT -p tcp --sport 7700 -m u32 --u32 "0>>22&0x3C@12>>26&0x3C@4>>16&0xFF=4" -j DROP
held() { [ "$(ipt3 -L OUTPUT -v -x -n | awk '$3 == "DROP" {n += $1} END {print n + 0}')" -ge 1 ]; }
path=/n3/small.txt
handed=$(status 1 frontend.handed_off)
in_client curl -s -o "$work/body" -w '%{http_code}' --max-time 20 "http://$(node_addr 1):$BATON_PORT$path?$(unique)" \
  > "$work/code" &
fetch_pid=$!
cleanup_hooks+=("kill $fetch_pid 2> /dev/null")
eventually 5 held || fail "node 3 sent no handoff ack"

# Node 3 out of node 1's config: its [[nodes]] entry and the rules naming it.
/usr/bin/python3 - "$conf" << 'PY'
import re, sys
path = sys.argv[1]
blocks = re.split(r'\n(?=\[)', open(path).read())
out = [b for b in blocks
       if not (b.startswith('[[nodes]]') and re.search(r'^id = 3$', b, re.M))
       and not (b.startswith('[[content.rules]]') and re.search(r'nodes = \[[^\]]*3', b))]
open(path, 'w').write('\n'.join(out))
PY
kill -HUP "$(cat "$root/out/testbed/n1/batond.pid")"
eventually 5 peer_retired 1 3 || fail "node 3 not retired after SIGHUP"
# The acknowledgement comes only after the reload: the handoff is still pending.
[ "$(status 1 frontend.handed_off)" = "$handed" ] || fail "the handoff completed before the reload: nothing tested"
ipt3 -F OUTPUT

wait "$fetch_pid" || true
[ "$(cat "$work/code")" = 200 ] || fail "the request handed to the retired node got '$(cat "$work/code")'"
[ "$(sha256sum < "$work/body" | cut -d' ' -f1)" = "$(content_sha $path)" ] || fail "the body differs"
logged 3 "$path" || fail "node 3 did not serve it"
wait_no_live_flows 15 || fail "flows left"
pass "a handoff acknowledged after its back end left the node list (reload) is served, byte-exact"
