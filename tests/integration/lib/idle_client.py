"""A keep-alive client for the idle-timeout test.

Usage: idle_client.py SERVICE_ADDR PORT PATH ACTIVE_SECONDS IDLE_MS
Asks for PATH, then keeps the connection busy with a request every IDLE_MS/2 for ACTIVE_SECONDS (a
connection in use must never be taken for idle), then stays silent and waits for the reset that the
idle timeout must bring. Prints the local port first (for the caller's checks), then what happened;
exits 1 if the connection died while in use or was not reset in time."""
import socket
import sys
import time

from http_get import http_get

addr, port, path, active, idle_ms = sys.argv[1], int(sys.argv[2]), sys.argv[3], float(sys.argv[4]), int(sys.argv[5])
s = socket.create_connection((addr, port), timeout=10)
print(f"port {s.getsockname()[1]}", flush=True)


def get(n):
    status, _ = http_get(s, f"{path}?idle={n}", addr)
    if status != 200:
        raise SystemExit(f"FAIL: request {n}: status {status}")


n = 0
start = time.monotonic()
try:
    while True:
        get(n)
        n += 1
        if time.monotonic() - start >= active:
            break
        time.sleep(idle_ms / 2000)
except OSError as e:
    raise SystemExit(f"FAIL: request {n} on a connection in use: {e!r}")
print(f"{n} requests over {time.monotonic() - start:.1f} s on one connection", flush=True)
quiet = time.monotonic()
s.settimeout(idle_ms / 1000 + 20)
try:
    data = s.recv(1)
    raise SystemExit(f"FAIL: {'FIN' if not data else 'data'} instead of a reset after {time.monotonic() - quiet:.1f} s")
except ConnectionResetError:
    waited = time.monotonic() - quiet
except socket.timeout:
    raise SystemExit(f"FAIL: no reset after {time.monotonic() - quiet:.1f} s of silence: the client is left half-open")
# The back end counts from the last packet it saw, our ACK of the last response, which left a moment
# before we started counting: allow for that moment, not more.
if waited * 1000 < idle_ms - 100:
    raise SystemExit(f"FAIL: reset after {waited:.3f} s, before the idle timeout")
print(f"reset after {waited:.3f} s of silence", flush=True)
