#!/usr/bin/env bash
# Reload under load: node 1 runs from a config file of the test's own, with a rule /reload/ -> node 2,
# while requests for /reload/ and shared content (nodes 2 and 3) go through node 1 one after the other,
# and a download from node 2 runs. Then, none of the requests failing and the download finishing
# byte-exact:
# - the rule rewritten to node 3 and `batonctl reload`: later /reload/ requests go to node 3;
# - a broken file: refused with the same error as at start, the old config stays in force;
# - a change that needs a restart (service_port): refused, named;
# - node 3 taken out of the node list (and its rules) by SIGHUP: no new handoff goes to node 3, its
#   connection stays;
# - the testbed's own config back (node 3 in again): node 3 serves again.
. "$(dirname "$0")/lib/common.sh"
[ "$(content_holders /shared/a.bin)" = "2,3" ] || fail "the test needs /shared/a.bin on nodes 2 and 3"
orig=$root/out/testbed/n1/batond.toml
conf=$work/n1.toml
ctl() { "$batonctl" -s "$(node_socket "$1")" "${@:2}"; }
# with_rule NODE: the testbed's config plus /reload/ -> NODE.
with_rule() { cp "$orig" "$conf.new" && printf '\n[[content.rules]]\nprefix = "/reload/"\nnodes = [%s]\n' "$1" >> "$conf.new" && mv "$conf.new" "$conf"; }
cleanup_hooks+=('restart_node 1')
with_rule 2
restart_node 1 "$conf" || fail "node 1 did not start with the test's config"

q=$(unique)
loop() {
  local i=0
  while [ ! -e "$work/stop" ]; do
    i=$((i + 1))
    echo "$i reload $(fetch 1 "/reload/x?$q-r$i" /dev/null)" >> "$work/codes"
    echo "$i shared $(fetch 1 "/shared/a.bin?$q-s$i" /dev/null)" >> "$work/codes"
  done
}
loop &
loop_pid=$!
cleanup_hooks+=("touch $work/stop; wait $loop_pid 2> /dev/null")
last() { tail -n 1 "$work/codes" | cut -d' ' -f1; }
# served_after NODE TAG-PREFIX FROM: NODE logged a request TAG-PREFIX<i> with i > FROM.
served_after() { grep -o -- "$2[0-9]*" "$(node_log "$1")" | sed "s/$2//" | awk -v f="$3" '$1 > f' | grep -q .; }
none_after() { ! served_after "$@"; }
eventually 10 served_after 2 "$q-r" 0 || fail "/reload/ not served by node 2 at first"
bg_curl -s -o "$work/long" --limit-rate 300k "http://$(node_addr 1):$BATON_PORT/n2/mb.bin?$q-long"
long_pid=$bg_pid

# 1. The rule moves to node 3.
with_rule 3
ctl 1 reload > "$work/out" 2>&1 || fail "reload failed: $(cat "$work/out")"
mark=$(last)
eventually 10 served_after 3 "$q-r" "$((mark + 1))" || fail "/reload/ not served by node 3 after the reload"
none_after 2 "$q-r" "$((mark + 1))" || fail "/reload/ still reached node 2 after the reload"

# 2. A broken file: the error names the file and key, as at start; the rule stays on node 3.
sed -i '1i sevrice_port = 81' "$conf"
if ctl 1 reload > "$work/out" 2>&1; then fail "a broken config was accepted"; fi
grep -q "$conf: unknown key 'sevrice_port'" "$work/out" || fail "unclear reload error: $(cat "$work/out")"
start_error=$("$root/build/daemon/batond" --check -c "$conf" 2>&1 || true)
grep -qF -- "$(sed 's/^batonctl: //' "$work/out")" <<< "$start_error" || fail "reload and start say different things: $start_error"
mark=$(last)
more() { [ "$(last)" -ge $((mark + 5)) ]; }
eventually 10 more || fail "requests stalled after the refused reload: $(tail -n 2 "$work/codes" | tr '\n' ' ')"
none_after 2 "$q-r" "$((mark + 1))" || fail "the refused config took effect"

# 3. A change that needs a restart.
with_rule 3
sed -i 's/^service_port = .*//; 1i service_port = 8080' "$conf"
if ctl 1 reload > "$work/out" 2>&1; then fail "a new service_port was accepted at reload"; fi
grep -q "service_port cannot change at reload" "$work/out" || fail "unclear refusal: $(cat "$work/out")"

# 4. Node 3 out of the cluster, by SIGHUP.
cp "$orig" "$conf"
/usr/bin/python3 - "$conf" << 'EOF'
import re, sys
path = sys.argv[1]
text = open(path).read()
# Drop node 3's [[nodes]] entry and every rule naming it; /shared/ stays on node 2.
blocks = re.split(r'\n(?=\[)', text)
out = []
for b in blocks:
    if b.startswith('[[nodes]]') and re.search(r'^id = 3$', b, re.M):
        continue
    if b.startswith('[[content.rules]]') and '/shared/' in b:
        b = re.sub(r'nodes = \[.*\]', 'nodes = [2]', b)
    elif b.startswith('[[content.rules]]') and re.search(r'nodes = \[[^\]]*3', b):
        continue
    out.append(b)
open(path, 'w').write('\n'.join(out))
EOF
kill -HUP "$(cat "$root/out/testbed/n1/batond.pid")"
eventually 5 peer_retired 1 3 || fail "node 3 not retired after SIGHUP"
mark=$(last)
more() { [ "$(last)" -ge $((mark + 10)) ]; }
eventually 20 more || fail "requests stalled after node 3 left: $(tail -n 2 "$work/codes" | tr '\n' ' ')"
none_after 3 "$q-s" "$((mark + 1))" || fail "shared content still went to node 3 after it left"
[ "$(peer_connected 1 3)" = 1 ] || fail "node 3's connection did not stay"

# 5. The testbed's config back: node 3 serves again.
cp "$orig" "$conf"
ctl 1 reload > "$work/out" 2>&1 || fail "reload back failed: $(cat "$work/out")"
mark=$(last)
eventually 20 served_after 3 "$q-s" "$((mark + 1))" || fail "node 3 not used again"

wait "$long_pid" || fail "the download from node 2 failed across the reloads"
[ "$(sha256sum < "$work/long" | cut -d' ' -f1)" = "$(content_sha /n2/mb.bin)" ] || fail "the download differs"
touch "$work/stop"
wait "$loop_pid"
total=$(wc -l < "$work/codes")
# /reload/x exists nowhere: 404 from whoever serves it. Shared content: 200.
bad=$(awk '($2 == "shared" && $3 != 200) || ($2 == "reload" && $3 != 404)' "$work/codes" | wc -l)
[ "$bad" = 0 ] || fail "$bad of $total requests failed: $(awk '($2 == "shared" && $3 != 200) || ($2 == "reload" && $3 != 404)' "$work/codes" | head -3 | tr '\n' ' ')"
wait_no_live_flows 15 || fail "flows left"
pass "$total requests across 5 reloads (a rule moved, a broken file and a restart-only change refused, node 3 out by SIGHUP and back), none failed, the download byte-exact"
