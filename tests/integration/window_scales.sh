#!/usr/bin/env bash
# Window scales that differ between front end and back end. The client applies the front end's scale
# (from the SYN/ACK it saw) to windows the back end's kernel wrote with its own, so every window is
# rescaled on the way out, clamped to 16 bits. Smaller receive buffers on one node give it a smaller
# scale (7 against the default 10 here): once on the back end (without rescaling the client would
# overrun its window: the back end's kernel counts TcpExtBeyondWindow), once on the front end (the
# rescaled window exceeds 16 bits and must be clamped, never wrap). Each way a 4 MB upload at full speed
# and a 10 MB download through a handoff are byte-exact, the scales in use are read from node 2's
# `batonctl flows --json`, and node 2's kernel sees no segment beyond its window.
. "$(dirname "$0")/lib/common.sh"
rmem() { ip netns exec "$(node_ns "$1")" sysctl -n net.ipv4.tcp_rmem; }
set_rmem() { ip netns exec "$(node_ns "$1")" sysctl -qw net.ipv4.tcp_rmem="$2"; }
orig1=$(rmem 1)
orig2=$(rmem 2)
cleanup_hooks+=('set_rmem 1 "$orig1"; set_rmem 2 "$orig2"')
beyond() { ip netns exec "$(node_ns 2)" nstat -asz TcpExtBeyondWindow | awk '$1 == "TcpExtBeyondWindow" {print $2}'; }
# wscales PORT: "FRONTEND BACKEND" of node 2's back-end flow from the client's PORT.
wscales() {
  "$batonctl" -s "$(node_socket 2)" --json flows | /usr/bin/python3 -c '
import json, sys
for f in json.load(sys.stdin):
    if f["role"] == "backend" and f["client"].endswith(":" + sys.argv[1]) and "wscale" in f:
        print(f["wscale"]["frontend"], f["wscale"]["backend"]); break' "$1"
}
head -c $((4 * 1024 * 1024)) /dev/urandom > "$work/upload"
for small in 2 1; do
  set_rmem 1 "$orig1"
  set_rmem 2 "$orig2"
  # Small buffers keep that node's window small: a client uploading at full speed fills the back end's
  # window all the time, so a window read too large (a missing rescale) overruns it.
  set_rmem "$small" "4096 16384 16384"
  before=$(beyond)
  # As fast as it goes: a client that fills the back end's receive window is where a wrong scale shows.
  upload_through_node1 "$work/upload" "node $small with small buffers"
  # The ended flow lingers on node 2 for linger_ms, with its scales.
  ws=$(wscales "$upload_port")
  code=$(fetch 1 "/n2/10m.bin?$(unique)" "$work/body")
  [ "$code" = 200 ] || fail "node $small with small buffers: download status $code"
  [ "$(sha256sum < "$work/body" | cut -d' ' -f1)" = "$(content_sha /n2/10m.bin)" ] || fail "download differs"
  read -r fe be <<< "$ws"
  [ -n "$fe" ] || fail "node 2 showed no window scales for the upload"
  if [ "$small" = 2 ]; then
    [ "$be" -lt "$fe" ] || fail "expected the back end's scale below the front end's, got FE $fe BE $be"
  else
    [ "$be" -gt "$fe" ] || fail "expected the back end's scale above the front end's, got FE $fe BE $be"
  fi
  over=$(( $(beyond) - before ))
  [ "$over" = 0 ] || fail "FE scale $fe, BE scale $be: node 2's kernel saw $over segments beyond its window"
  echo "front end scale $fe, back end scale $be: 4 MB up, 10 MB down byte-exact, nothing beyond the window"
  wait_no_live_flows || fail "flows left behind"
done
pass "windows rescaled both ways between differing scales"
