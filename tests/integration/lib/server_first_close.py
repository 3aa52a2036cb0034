"""A client that lets the server close first and closes its own side only when the test says so: the
server's FIN (and the client's acknowledgement of it) pass one datapath, the client's FIN (and the
server's acknowledgement) whatever the test switched to in between.
Usage: server_first_close.py ADDR PORT PATH EXPECTED_SHA256 PAUSED_FILE GO_FILE
Sends a "Connection: close" request, reads the response to the server's FIN, checks the body, creates
PAUSED_FILE, waits for GO_FILE, closes. Prints "ok BYTES" and exits 0, or what went wrong and exits 1."""
import hashlib
import os
import socket
import sys
import time

addr, port, path, expected, paused, go = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6]
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.settimeout(30)
s.connect((addr, port))
s.sendall(f"GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n".encode())
data = b""
while True:
    chunk = s.recv(1 << 16)
    if not chunk:
        break
    data += chunk
head, _, body = data.partition(b"\r\n\r\n")
status = head.split(b"\r\n", 1)[0].decode(errors="replace")
if not status.startswith("HTTP/1.1 200"):
    raise SystemExit(f"status {status}")
if hashlib.sha256(body).hexdigest() != expected:
    raise SystemExit(f"body differs ({len(body)} bytes)")
open(paused, "w").close()
deadline = time.monotonic() + 30
while not os.path.exists(go):
    if time.monotonic() > deadline:
        raise SystemExit("never told to go on")
    time.sleep(0.02)
s.close()
print(f"ok {len(body)}")
