#!/usr/bin/env bash
# eBPF datapath: a handed-off connection whose close straddles a switch of its back end's datapath
# (batonctl datapath detach|attach) ends at once, not at its idle timeout: the close state moves with
# the packets (docs/design.md, "Run-time attach and detach"). The server closes first ("Connection:
# close"); the client reads to the end, pauses, and closes only after the switch:
# 1. Attached: the server's FIN and the client's acknowledgement pass the back end's tc programs; then
#    they are detached and the client's FIN and its acknowledgement pass user space.
# 2. Detached: the server's FIN and its acknowledgement pass user space; then the programs are attached
#    again and the rest passes tc.
# Each time the download is byte-exact, the back end counts the close, and no flow is left.
. "$(dirname "$0")/lib/common.sh"
[ "$BATON_DATAPATH" = ebpf ] || skip "needs the eBPF datapath"
cleanup_hooks+=('"$batonctl" -s "$(node_socket 2)" datapath attach > /dev/null')
path=/n2/mb.bin
py=$root/tests/integration/lib/server_first_close.py
# straddle SWITCH LABEL: a download through node 1, node 2's datapath switched (SWITCH) after the server's
# FIN and before the client's.
straddle() {
  rm -f "$work/paused" "$work/go"
  local closed0 pid
  closed0=$(status 2 backend.flows_closed)
  in_client /usr/bin/python3 "$py" "$(node_addr 1)" "$BATON_PORT" "$path?$(unique)" "$(content_sha $path)" \
    "$work/paused" "$work/go" > "$work/out" 2>&1 &
  pid=$!
  cleanup_hooks+=("kill $pid 2> /dev/null")
  eventually 10 test -e "$work/paused" || fail "$2: the response did not end: $(cat "$work/out")"
  "$batonctl" -s "$(node_socket 2)" datapath "$1" > /dev/null || fail "$2: datapath $1 on node 2"
  touch "$work/go"
  wait "$pid" || fail "$2: $(cat "$work/out")"
  closed() { [ "$(status 2 backend.flows_closed)" -gt "$closed0" ]; }
  eventually 5 closed || fail "$2: node 2 never saw the close (its tracking was lost at the switch)"
  wait_no_live_flows 10 || fail "$2: flows left"
}
straddle detach "the server's FIN under tc, the client's under user space"
straddle attach "the server's FIN under user space, the client's under tc"
pass "a close that straddles detach, and one that straddles attach, each ended within the linger time, bodies byte-exact"
