"""Same client port, two connections: directly to the back end, and through the front end.

Usage: port_collision.py CLIENT_ADDR PORT FRONT_END BACK_END SERVICE_PORT PATH QUERY
1. connects from PORT straight to BACK_END and gets PATH (200), keeping the connection open;
2. connects from the same PORT to FRONT_END and asks for PATH?QUERY: on the back end this is the same
   4-tuple, so the handoff cannot happen; the answer must come at once (before the front end's
   handoff_ms), from the front end itself (printed: status and seconds);
3. asks again on the direct connection: it must be untouched (200)."""
import socket
import sys
import time

from http_get import http_get

client, lport, fe, be, port, path, query = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5]), sys.argv[6], sys.argv[7]


def connect(to):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((client, lport))
    s.settimeout(10)
    s.connect((to, port))
    return s


def get(s, target, host):
    return http_get(s, target, host)[0]


direct = connect(be)
if get(direct, path, be) != 200:
    raise SystemExit("FAIL: the direct request failed")
start = time.monotonic()
try:
    via = connect(fe)
    status = get(via, f"{path}?{query}", fe)
except OSError as e:
    raise SystemExit(f"FAIL: through the front end: {e!r} after {time.monotonic() - start:.2f} s")
took = time.monotonic() - start
via.close()
try:
    again = get(direct, path, be)
except OSError as e:
    raise SystemExit(f"FAIL: the direct connection was hurt: {e!r}")
if again != 200:
    raise SystemExit(f"FAIL: the direct connection answered {again}")
direct.close()
print(f"through the front end: {status} after {took:.2f} s; direct connection intact")
