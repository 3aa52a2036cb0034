#!/usr/bin/env bash
# eBPF datapath: a handed-off download goes on, byte-exact, while the tc programs of both nodes are
# detached (NFQUEUE takes every packet) and attached again (batonctl datapath detach|attach).
. "$(dirname "$0")/lib/common.sh"
[ "$BATON_DATAPATH" = ebpf ] || skip "needs the eBPF datapath"
cleanup_hooks+=('for n in 1 2; do "$batonctl" -s "$(node_socket $n)" datapath attach >/dev/null; done')
path=/n2/big.bin
bg_curl -s -o "$work/body" -w '%{http_code}' --limit-rate 5M --max-time 60 \
  "http://$(node_addr 1):$BATON_PORT$path?$(unique)" > "$work/code"
fetch_pid=$bg_pid
grows "$work/body" 2000000 || fail "the download did not get going"
fwd_user=$(status 1 frontend.packets_forwarded)
for n in 1 2; do "$batonctl" -s "$(node_socket "$n")" datapath detach > /dev/null || fail "detach on node $n"; done
forwarded_in_user_space() { [ "$(status 1 frontend.packets_forwarded)" -gt "$fwd_user" ]; }
eventually 5 forwarded_in_user_space || fail "while detached, user space forwarded nothing"
grows "$work/body" 1000000 || fail "the flow stopped while detached"
kill -0 $fetch_pid 2>/dev/null || fail "the download ended while detached (too fast to prove anything)"
for n in 1 2; do "$batonctl" -s "$(node_socket "$n")" datapath attach > /dev/null || fail "attach on node $n"; done
fwd_kernel=$(datapath_counter 1 fe_forwarded)
forwarded_in_kernel() { [ "$(datapath_counter 1 fe_forwarded)" -gt "$fwd_kernel" ]; }
eventually 5 forwarded_in_kernel || fail "after attach, tc forwarded nothing"
wait $fetch_pid || fail "curl failed"
[ "$(cat "$work/code")" = 200 ] || fail "status $(cat "$work/code")"
[ "$(sha256sum < "$work/body" | cut -d' ' -f1)" = "$(content_sha $path)" ] || fail "body differs"
wait_no_live_flows || fail "flows left behind"
pass "50 MB byte-exact across detach (NFQUEUE took over) and attach of the tc programs"
