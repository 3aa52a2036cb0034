#!/usr/bin/env bash
# eBPF datapath: a node's batond killed (SIGKILL, no chance to clean up) in the middle of a handed-off
# download, on the front end and then on the back end. The flow lives on in the kernel (attached
# programs, pinned maps); the restarted batond cleans up the dead one's rules, adopts the flow and sees
# it closed. (Under the NFQUEUE datapath a killed batond takes its flows' translation with it: see
# docs/design.md, "Not done yet".)
. "$(dirname "$0")/lib/common.sh"
[ "$BATON_DATAPATH" = ebpf ] || { echo "SKIP: needs the eBPF datapath"; exit 0; }
cleanup_hooks+=('for n in 1 2; do batond_alive $n || start_batond $n; done')
for victim in 1 2; do
  bg_curl -s -o "$work/body" -w '%{http_code}' --limit-rate 8M --max-time 60 \
    "http://$(node_addr 1):$BATON_PORT/n2/big.bin?$(unique)" > "$work/code"
  fetch=$bg_pid
  sleep 1
  kill -KILL "$(cat "$root/out/testbed/n$victim/batond.pid")"
  sleep 0.5
  running $fetch || fail "node $victim: the download ended with batond (too fast to prove anything)"
  start_batond "$victim"
  for _ in $(seq 1 100); do [ "$(peers_up 1)" = 1 ] && [ "$(peers_up 2)" = 1 ] && break; sleep 0.1; done
  wait $fetch || fail "node $victim killed: curl failed"
  [ "$(cat "$work/code")" = 200 ] || fail "node $victim killed: status $(cat "$work/code")"
  [ "$(sha256sum < "$work/body" | cut -d' ' -f1)" = "$(content_sha /n2/big.bin)" ] || fail "node $victim killed: body differs"
  wait_no_live_flows 20 || fail "node $victim killed: the flow was not closed on both nodes"
  echo "batond of node $victim killed mid-download: 50 MB byte-exact, flow adopted and closed"
done
pass "downloads survive a SIGKILL of the front end's or the back end's batond"
