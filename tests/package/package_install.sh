#!/usr/bin/env bash
# The Debian package, built here and installed on this machine with dpkg, runs the testbed's cluster: its
# batond and batonctl, its unit (systemd-analyze verify), configs under /etc/baton/; a request through
# node 1 for node 2's content is handed off by the installed batond. The package is purged at the end
# (also when the test fails), which leaves nothing of it behind; its Depends: come from the binaries.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
fail() { echo "FAIL: $*" >&2; exit 1; }
if dpkg-query -W -f='${Status}' baton 2>/dev/null | grep -q "install ok installed"; then
  fail "a baton package is installed on this machine already: this test would replace it"
fi
work=$(mktemp -d)
cleanup() {
  ./scripts/testbed down > /dev/null 2>&1 || true
  dpkg --purge baton > /dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

./scripts/package > "$work/package.log" 2>&1 || { cat "$work/package.log"; fail "scripts/package failed"; }
deb=$(ls out/package/baton_*.deb)
depends=$(dpkg-deb -f "$deb" Depends)
echo "Depends: $depends"
for d in libbpf1 libnetfilter-queue1 libssl3 iptables; do
  [[ $depends == *"$d"* ]] || fail "Depends lacks $d"
done
dpkg -i "$deb" > "$work/dpkg.log" 2>&1 || { cat "$work/dpkg.log"; fail "dpkg -i failed"; }
for f in /usr/sbin/batond /usr/bin/batonctl /usr/lib/systemd/system/batond.service \
         /usr/share/doc/baton/examples/batond.toml /usr/share/doc/baton/deploy.md \
         /usr/share/doc/baton/grafana-dashboard.json; do
  [ -e "$f" ] || fail "the package did not install $f"
done
[ -d /etc/baton ] || fail "no /etc/baton"
systemd-analyze verify /usr/lib/systemd/system/batond.service > "$work/verify.log" 2>&1 ||
  { cat "$work/verify.log"; fail "systemd-analyze verify"; }
/usr/sbin/batond --check -c /usr/share/doc/baton/examples/batond.toml || fail "the example config does not check"

./scripts/testbed up --installed > "$work/testbed.log" 2>&1 || { cat "$work/testbed.log"; fail "testbed up --installed"; }
# shellcheck disable=SC1091
. out/testbed.env
for n in $BATON_NODES; do
  pid=$(cat "out/testbed/n$n/batond.pid")
  [ "$(readlink "/proc/$pid/exe")" = /usr/sbin/batond ] || fail "node $n runs $(readlink "/proc/$pid/exe")"
  tr '\0' ' ' < "/proc/$pid/cmdline" | grep -q -- "-c /etc/baton/bt-testbed-n$n.toml" || fail "node $n: not the /etc/baton config"
done
q="pkg=$(date +%s%N)"
code=$(ip netns exec "$BATON_CLIENT_NS" curl -s -o "$work/body" -w '%{http_code}' --max-time 10 \
  "http://$BATON_NODE_1_ADDR:$BATON_PORT/n2/small.txt?$q")
[ "$code" = 200 ] || fail "a request through node 1: status $code"
grep -q -- "$q" "$BATON_NODE_2_ACCESS_LOG" || fail "node 2 did not serve it"
handed=$(/usr/bin/batonctl -s "$BATON_NODE_1_SOCKET" --json status | /usr/bin/python3 -c \
  'import json,sys; print(json.load(sys.stdin)["frontend"]["handed_off"])')
[ "$handed" -ge 1 ] || fail "the installed batond on node 1 handed nothing off"
./scripts/testbed down > /dev/null
[ -z "$(ls /etc/baton/bt-testbed-n*.toml 2>/dev/null)" ] || fail "testbed down left its configs in /etc/baton"
dpkg --purge baton > /dev/null
[ ! -e /usr/sbin/batond ] && [ ! -e /usr/lib/systemd/system/batond.service ] || fail "the purge left files"
echo "PASS: $(basename "$deb") installed, its unit verified, the testbed cluster ran on it (a handoff through node 1), purged"
