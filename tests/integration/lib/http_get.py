"""One HTTP/1.1 GET on an open socket (keep-alive): the tests' minimal client where curl cannot be used
(a connection kept between requests, two sockets on one local port)."""


def http_get(sock, target, host):
    """Sends GET target and reads the whole response (Content-Length). Returns (status, body); raises
    SystemExit with a FAIL line if the connection closes early."""
    sock.sendall(f"GET {target} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            raise SystemExit(f"FAIL: the connection closed before the response to {target} (from {host})")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for h in head.split(b"\r\n")[1:]:
        k, _, v = h.partition(b":")
        if k.strip().lower() == b"content-length":
            length = int(v)
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise SystemExit(f"FAIL: the connection closed in the body of {target}")
        body += chunk
    return int(head.split(b" ")[1]), body
