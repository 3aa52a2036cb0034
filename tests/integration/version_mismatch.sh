#!/usr/bin/env bash
# A node of an incompatible release (another control protocol version) is refused, visibly: node 3's
# batond is replaced by a stand-in that answers on its control address with a version-3 frame. Node 1,
# which dials node 3, closes each such connection with a warning naming both versions, `batonctl nodes`
# shows node 3 down with that error, and requests for content node 2 also holds go on without a failure.
# Node 3's batond back: it is up again (docs/operations.md, "Rolling upgrades").
. "$(dirname "$0")/lib/common.sh"
[ "$(content_holders /shared/a.bin)" = "2,3" ] || fail "the test needs /shared/a.bin on nodes 2 and 3"
control3=$(grep -A2 '^id = 3$' "$root/out/testbed/n3/batond.toml" | sed -n 's/^control_address = "\(.*\)"/\1/p')
[ -n "$control3" ] || fail "node 3's control address not found in its config"
log1=$root/out/testbed/n1/batond.log
from=$(($(file_size "$log1") + 1))
standin=
restored=0
# Whatever happens: the stand-in goes, node 3's batond comes back (once).
cleanup_hooks+=('[ -z "$standin" ] || { kill "$standin"; wait "$standin"; } 2> /dev/null
  [ "$restored" = 1 ] || { start_batond 3; eventually 15 all_peers_up 1; }')
stop_batond 3 || fail "node 3's batond did not stop"
# The stand-in: every connection gets a frame of protocol version 3 (a HELLO's type and size), then is
# held until the other side closes it.
ip netns exec "$(node_ns 3)" /usr/bin/python3 -c '
import socket, struct, sys
host, port = sys.argv[1].rsplit(":", 1)
srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind((host, int(port))); srv.listen(8)
while True:
    c, _ = srv.accept()
    c.sendall(struct.pack(">IBB", 22, 3, 1) + bytes(20))
    try:
        while c.recv(4096): pass
    except OSError: pass
    c.close()' "$control3" &
standin=$!
refused() {
  "$batonctl" -s "$(node_socket 1)" --json nodes | /usr/bin/python3 -c '
import json, sys
n = {x["id"]: x for x in json.load(sys.stdin)}[3]
sys.exit(not (n["state"] == "down" and "protocol version 3 (this node speaks 2)" in n["last_error"]))'
}
eventually 15 refused || fail "node 1 does not show node 3 refused for its version: $("$batonctl" -s "$(node_socket 1)" nodes)"
tail -c +"$from" "$log1" | grep -q "control: ${control3}: protocol error: protocol version 3 (this node speaks 2): connection closed" ||
  fail "no warning naming both versions in node 1's log"
q=$(unique)
for i in 1 2 3 4 5 6; do
  [ "$(fetch 1 "/shared/a.bin?$q-$i" /dev/null)" = 200 ] || fail "request $i failed while node 3 was refused"
done
{ kill "$standin"; wait "$standin"; } 2> /dev/null || true
standin=
restored=1
start_batond 3
eventually 15 all_peers_up 1 || fail "node 3's batond did not come back"
pass "a node speaking another protocol version is refused with a warning naming both versions and shown down in batonctl nodes; requests went on; the right version connects again"
