#!/usr/bin/env bash
# Requests that need several segments: header blocks of 8 and 16 KB (large cookies; more than a client
# sends before it needs an ACK) are handed off without stalling, and request bodies of a few MB stream
# through the front end after the handoff and arrive byte-exact (PUT, stored by the back end's nginx).
. "$(dirname "$0")/lib/common.sh"
for kb in 8 16; do
  cookie=$(head -c $((kb * 1024)) /dev/zero | tr '\0' 'c')
  q=$(unique)
  start=$(date +%s%N)
  code=$(in_client curl -s -o "$work/body" -w '%{http_code}' --max-time 20 -H "Cookie: big=$cookie" \
         "http://$(node_addr 1):$BATON_PORT/n2/small.txt?$q")
  ms=$(( ($(date +%s%N) - start) / 1000000 ))
  [ "$code" = 200 ] || fail "${kb} KB header: status $code"
  [ "$(sha256sum < "$work/body" | cut -d' ' -f1)" = "$(content_sha /n2/small.txt)" ] || fail "${kb} KB header: body differs"
  logged 2 "$q" || fail "${kb} KB header: not handed off to node 2"
  [ "$ms" -lt 1000 ] || fail "${kb} KB header took ${ms} ms: the request stalled while held"
  echo "${kb} KB header: handed off in ${ms} ms"
done
for mb in 1 4; do
  head -c $((mb * 1024 * 1024)) /dev/urandom > "$work/upload"
  upload_through_node1 "$work/upload" "${mb} MB PUT"
  echo "${mb} MB PUT body: byte-exact on node 2"
done
wait_no_live_flows || fail "flows left behind"
pass "8 and 16 KB headers handed off without stalling; 1 and 4 MB bodies byte-exact through the front end"
