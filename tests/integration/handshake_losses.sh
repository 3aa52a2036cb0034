#!/usr/bin/env bash
# Loss at each step of a handoff, one step at a time, on every connection: the client's SYN, the front
# end's SYN/ACK, the client's handshake ACK, its request, the first response segment, the client's first
# ACK of the response. Each is dropped exactly (conntrack packet counts in the client's namespace), the
# transfer still completes byte-exact, both nodes free the flow, and the client-side checker is clean.
. "$(dirname "$0")/lib/common.sh"
ipt() { ip netns exec "$BATON_CLIENT_NS" iptables -w "$@"; }
cleanup_hooks+=('ipt -F INPUT; ipt -F OUTPUT')
# name|chain|direction|packet number (of that direction, per connection)
steps="syn|OUTPUT|original|1
synack|INPUT|reply|1
handshake-ack|OUTPUT|original|2
request|OUTPUT|original|3
first-response-segment|INPUT|reply|3
first-ack-of-response|OUTPUT|original|4"
path=/n2/64k.bin
while IFS='|' read -r name chain dir nth; do
  ipt -F INPUT
  ipt -F OUTPUT
  port_match=$([ "$chain" = OUTPUT ] && echo --dport || echo --sport)
  if [ "$name" = syn ]; then
    # A dropped first SYN leaves no confirmed conntrack entry to count with: drop every other SYN (one
    # connection per step: its first SYN goes, the retransmission passes).
    ipt -A OUTPUT -p tcp --dport "$BATON_PORT" --syn -m statistic --mode nth --every 2 --packet 0 -j DROP
  else
    ipt -A "$chain" -p tcp "$port_match" "$BATON_PORT" -m connbytes --connbytes "$nth:$nth" \
      --connbytes-dir "$dir" --connbytes-mode packets -j DROP
  fi
  before=$(status 1 frontend.handed_off)
  q=$(unique)
  code=$(in_client curl -s -o "$work/body" -w '%{http_code}' --max-time 30 "http://$(node_addr 1):$BATON_PORT$path?$q") ||
    fail "$name lost: curl failed"
  [ "$code" = 200 ] || fail "$name lost: status $code"
  [ "$(sha256sum < "$work/body" | cut -d' ' -f1)" = "$(content_sha $path)" ] || fail "$name lost: body differs"
  logged 2 "$q" || fail "$name lost: not served by node 2"
  dropped=$(ipt -L "$chain" -v -x -n | awk '$3 == "DROP" {s += $1} END {print s + 0}')
  [ "$dropped" -ge 1 ] || fail "$name: nothing was dropped, the test tested nothing"
  [ "$(status 1 frontend.handed_off)" -gt "$before" ] || fail "$name lost: not handed off"
  wait_no_live_flows 15 || fail "$name lost: flows left behind"
  echo "$name lost ($dropped dropped): byte-exact, handed off, flow freed"
done <<< "$steps"
ipt -F INPUT
ipt -F OUTPUT
pass "a loss at every step of the handoff is recovered by TCP's own retransmissions"
