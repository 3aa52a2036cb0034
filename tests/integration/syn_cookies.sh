#!/usr/bin/env bash
# The front end under SYN-flood protection: with tcp_syncookies=2 its stack answers every SYN with a
# cookie and keeps no SYN_RECV state. Handoffs (and local service) still work: the options the client
# was promised are read from the SYN/ACK, and the held ACK carries the cookie if served locally.
. "$(dirname "$0")/lib/common.sh"
ns1=$(node_ns 1)
old=$(ip netns exec "$ns1" sysctl -n net.ipv4.tcp_syncookies)
cleanup_hooks+=("ip netns exec $ns1 sysctl -qw net.ipv4.tcp_syncookies=$old")
ip netns exec "$ns1" sysctl -qw net.ipv4.tcp_syncookies=2
cookies() { ip netns exec "$ns1" nstat -az TcpExtSyncookiesSent | awk '/SyncookiesSent/ {print $2}'; }
sent_before=$(cookies)
for path in /n2/small.txt /n3/medium.bin /n2/mb.bin /n1/small.txt /n1/medium.bin; do
  q=$(unique)
  code=$(fetch 1 "$path?$q" "$work/body")
  [ "$code" = 200 ] || fail "$path under SYN cookies: status $code"
  [ "$(sha256sum < "$work/body" | cut -d' ' -f1)" = "$(content_sha $path)" ] || fail "$path: body differs"
  holder=$(content_holders "$path")
  logged "$holder" "$q" || fail "$path: not served by node $holder"
done
[ "$(cookies)" -gt "$sent_before" ] || fail "no SYN cookie was sent: the test did not test cookies"
wait_no_live_flows || fail "flows left behind"
pass "handed off and local requests work while the front end answers with SYN cookies"
