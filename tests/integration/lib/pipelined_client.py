"""Requests for several nodes' content over one keep-alive connection, sent ahead of their answers.

  pipelined_client.py SERVER PORT MODE TARGET@SHA256 ...

MODE pipelined: every request in one write, then the answers in order.
MODE early:     each next request as soon as the first bytes of the previous answer arrive (so it comes
                before the client has acknowledged that answer; a small receive buffer keeps it so).
Every answer must be 200 with the expected body. Prints one line per answer; exits non-zero on a FAIL.
"""
import hashlib
import socket
import sys


def read_head(f, target):
    lines = []
    while True:
        line = f.readline()
        if not line:
            raise SystemExit(f"FAIL: the connection closed before the answer to {target}")
        if line in (b"\r\n", b"\n"):
            break
        lines.append(line.rstrip(b"\r\n"))
    status = int(lines[0].split(b" ")[1])
    length = 0
    for h in lines[1:]:
        k, _, v = h.partition(b":")
        if k.strip().lower() == b"content-length":
            length = int(v)
    return status, length


def read_body(f, n, target):
    body = f.read(n)
    if len(body) < n:
        raise SystemExit(f"FAIL: the connection closed in the body of {target} ({len(body)} of {n} bytes)")
    return body


def main():
    server, port, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    wanted = [a.rsplit("@", 1) for a in sys.argv[4:]]
    requests = [f"GET {t} HTTP/1.1\r\nHost: {server}\r\n\r\n".encode() for t, _ in wanted]
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
    s.settimeout(20)
    s.connect((server, port))
    f = s.makefile("rb")
    if mode == "pipelined":
        s.sendall(b"".join(requests))
    else:
        s.sendall(requests[0])
    for i, (target, sha) in enumerate(wanted):
        status, length = read_head(f, target)
        first = read_body(f, min(length, 1024), target)
        if mode == "early" and i + 1 < len(requests):
            s.sendall(requests[i + 1])
        body = first + read_body(f, length - len(first), target)
        got = hashlib.sha256(body).hexdigest()
        if status != 200 or got != sha:
            raise SystemExit(f"FAIL: {target}: status {status}, {length} bytes, sha256 {got[:12]} (want {sha[:12]})")
        print(f"{target}: 200, {length} bytes, body exact")
    s.close()


main()
