#!/usr/bin/env bash
# batond's life cycle on a node of its own (a namespace this test creates): clear refusals for bad
# config, wrong kernel settings and a missing service address; a clean start installs its rules and
# settings; a stop leaves the node exactly as it was; a crash's leftovers are cleaned at the next start.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
batond=$root/build/daemon/batond
batonctl=$root/build/ctl/batonctl
ns=bt-life-$$
work=$(mktemp -d /tmp/baton-life.XXXXXX)
pid=""
cleanup() {
  if [ -n "$pid" ]; then kill -KILL "$pid" 2>/dev/null || true; fi
  ip netns del "$ns" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; [ -f "$work/log" ] && cat "$work/log" >&2; exit 1; }
in_ns() { ip netns exec "$ns" "$@"; }

ip netns add "$ns"
in_ns ip link set lo up
in_ns ip link add eth0 type veth peer name eth1
in_ns ip addr add 10.212.0.1/24 dev eth0
in_ns ip link set eth0 up
in_ns ip link set eth1 up

config() {  # extra top-level lines
  cat > "$work/batond.toml" <<CONF
node_id = 1
status_socket = "$work/batond.sock"
bpf_pin_dir = "/sys/fs/bpf/$ns"
secret = "lifecycle-test-secret"
$1
[[nodes]]
id = 1
service_address = "${2:-10.212.0.1}"
control_address = "10.212.0.1:7700"
[content]
default = [1]
CONF
}
start() {
  # nsenter execs batond itself (ip netns exec forks), so that $! is batond and gets our signals.
  nsenter --net="/run/netns/$ns" "$batond" -c "$work/batond.toml" > "$work/log" 2>&1 &
  pid=$!
  for _ in $(seq 1 50); do
    grep -q "serving" "$work/log" && return 0
    kill -0 $pid 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}
# Everything batond may leave behind: iptables rules, tc qdiscs and filters, BPF pins.
rules() {
  in_ns iptables -w -t raw -S
  in_ns iptables -w -t filter -S
  in_ns tc qdisc show dev eth0
  in_ns tc filter show dev eth0 ingress 2>/dev/null
  in_ns tc filter show dev eth0 egress 2>/dev/null
  ls /sys/fs/bpf/"$ns" 2>/dev/null || true
}
sysctls() { in_ns sysctl -n net.ipv4.ip_forward net.ipv4.tcp_fwmark_accept net.ipv4.conf.all.send_redirects | tr '\n' ' '; }

# Bad config: exit 2, the message names the key, nothing changed.
config 'service_port = "eighty"'
before_rules=$(rules)
before_sysctls=$(sysctls)
set +e; in_ns "$batond" -c "$work/batond.toml" > "$work/log" 2>&1; rc=$?; set -e
[ $rc = 2 ] || fail "bad config: exit $rc, wanted 2"
grep -q "service_port" "$work/log" || fail "bad config: message does not name the key"
[ "$(rules)" = "$before_rules" ] || fail "bad config changed iptables"

# Kernel settings wrong and not ours to change: refuse, listing each.
config 'manage_sysctls = false'
set +e; in_ns "$batond" -c "$work/batond.toml" > "$work/log" 2>&1; rc=$?; set -e
[ $rc = 1 ] || fail "manage_sysctls=false: exit $rc, wanted 1"
grep -q "net/ipv4/ip_forward is 0, must be 1" "$work/log" || fail "refusal does not explain ip_forward"
[ "$(sysctls)" = "$before_sysctls" ] || fail "refusal changed sysctls"

# The service address must be on this node.
config '' 10.212.0.99
set +e; in_ns "$batond" -c "$work/batond.toml" > "$work/log" 2>&1; rc=$?; set -e
[ $rc = 1 ] && grep -q "not configured on any interface" "$work/log" || fail "missing service address not reported"

# A clean start installs rules and settings; a stop removes and restores them all.
config ''
start || fail "batond did not start"
grep -q "BATON_IN" <<< "$(rules)" || fail "no BATON_IN chain after start"
grep -q "NFQUEUE" <<< "$(rules)" || fail "no NFQUEUE rule after start"
[ "$(in_ns sysctl -n net.ipv4.ip_forward)" = 1 ] || fail "ip_forward not set"
grep -q "clsact" <<< "$(rules)" || fail "no clsact qdisc after start"
grep -q "baton_ingress" <<< "$(rules)" || fail "no tc ingress filter after start"
grep -q "baton_egress" <<< "$(rules)" || fail "no tc egress filter after start"
grep -q "baton_fe_flows" <<< "$(rules)" || fail "flow maps not pinned"
"$batonctl" -s "$work/batond.sock" status | grep -q "datapath ebpf" || fail "batonctl status"
# Run-time detach and attach: the NFQUEUE path takes every packet while detached.
"$batonctl" -s "$work/batond.sock" datapath detach > /dev/null || fail "datapath detach"
! grep -q "baton_ingress" <<< "$(rules)" || fail "tc filter still there after detach"
grep -q -- "--tcp-flags SYN,ACK SYN,ACK" <<< "$(rules)" || fail "NFQUEUE did not take over after detach"
"$batonctl" -s "$work/batond.sock" datapath attach > /dev/null || fail "datapath attach"
grep -q "baton_ingress" <<< "$(rules)" || fail "tc filter missing after attach"
! grep -q -- "--tcp-flags SYN,ACK SYN,ACK" <<< "$(rules)" || fail "NFQUEUE not narrowed after attach"
"$batonctl" -s "$work/batond.sock" --json flows | grep -q '^\[' || fail "batonctl flows --json"
kill -TERM $pid; rc=0; wait $pid || rc=$?; pid=""; [ $rc = 0 ] || fail "batond did not exit cleanly (exit $rc)"
[ "$(rules)" = "$before_rules" ] || fail "rules left behind: $(diff <(echo "$before_rules") <(rules))"
[ "$(sysctls)" = "$before_sysctls" ] || fail "sysctls not restored: $(sysctls) != $before_sysctls"
[ ! -e "$work/batond.sock" ] || fail "status socket left behind"

# After a crash (SIGKILL) the rules stay (with --queue-bypass, traffic still flows); the next start
# cleans them up and the next stop leaves nothing.
start || fail "batond did not start"
kill -KILL $pid; wait $pid 2>/dev/null || true; pid=""
grep -q "BATON_IN" <<< "$(rules)" || fail "expected leftovers after SIGKILL"
start || fail "batond did not start over a crash's leftovers"
[ "$(grep -c -- "-j BATON_IN" <<< "$(rules)")" = 1 ] || fail "rules duplicated after restart"
kill -TERM $pid; rc=0; wait $pid || rc=$?; pid=""; [ $rc = 0 ] || fail "batond did not exit cleanly (exit $rc)"
[ "$(rules)" = "$before_rules" ] || fail "rules left behind after restart: $(diff <(echo "$before_rules") <(rules))"
echo "PASS: refusals are clear; start and stop leave the node as it was; crash leftovers are cleaned"
