#!/usr/bin/env bash
# A request for content the front end holds is served by it and never handed off; under the eBPF
# datapath it never reaches user space either (kernel triage: tc matched its request line).
. "$(dirname "$0")/lib/common.sh"
path=/n1/small.txt
q=$(unique)
before=$(status 1 frontend.handed_off)
local_before=$(status 1 frontend.served_locally)
seen_before=$(status 1 frontend.flows_seen)
kernel_before=$(datapath_counter 1 fe_triage_local)
code=$(fetch 1 "$path?$q" "$work/body")
[ "$code" = 200 ] || fail "status $code"
[ "$(sha256sum < "$work/body" | cut -d' ' -f1)" = "$(content_sha $path)" ] || fail "body differs"
logged 1 "$q" || fail "node 1's access log lacks the request"
for n in $BATON_NODES; do
  [ "$n" = 1 ] && continue
  ! grep -q "$q" "$(node_log "$n")" || fail "node $n saw a local request"
done
[ "$(status 1 frontend.handed_off)" = "$before" ] || fail "a local request was handed off"
[ "$(status 1 frontend.served_locally)" -gt "$local_before" ] || fail "not counted as served locally"
if [ "$BATON_DATAPATH" = ebpf ]; then
  [ "$(datapath_counter 1 fe_triage_local)" -gt "$kernel_before" ] || fail "tc did not serve it locally itself"
  [ "$(status 1 frontend.flows_seen)" = "$seen_before" ] || fail "batond saw the connection"
  # A request line split over two segments is not tc's to judge: batond decides, and serves it here.
  seen_before=$(status 1 frontend.flows_seen)
  body=$(ip netns exec "$BATON_CLIENT_NS" /usr/bin/python3 - "$(node_addr 1)" "$BATON_PORT" "$path" <<'PY'
import socket, sys, time
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5)
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
s.sendall(b"GET " + sys.argv[3][:4].encode())
time.sleep(0.05)
s.sendall(sys.argv[3][4:].encode() + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
data = b""
while chunk := s.recv(65536):
    data += chunk
print(data.split(b"\r\n", 1)[0].decode())
PY
  )
  [ "$body" = "HTTP/1.1 200 OK" ] || fail "split request line: $body"
  [ "$(status 1 frontend.flows_seen)" -gt "$seen_before" ] || fail "batond did not decide the split request"
fi
pass "served by node 1 itself"
