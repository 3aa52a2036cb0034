"""One HTTP exchange over a raw socket, ended in a chosen way, from a chosen local port.
Usage: close_modes.py ADDR PORT PATH MODE LOCAL_PORT EXPECTED_SHA256
Modes:
  client-fin   keep-alive request; read the whole response; the client closes first (FIN)
  server-fin   "Connection: close"; the server closes first; the client reads to EOF, then closes
  client-rst   keep-alive request; read the response; abort with a RST (SO_LINGER 0)
  client-rst-mid  request a large body; read a little; abort with a RST while the server still sends
  keepalive    three requests on the one connection, then the client closes
  half-close   the client shuts its sending side right after the request (HTTP/1.0 style, like nc)
  server-rst   the server closes first; the client then sends more, which the server's stack answers
               with a RST (it must reach the client, translated, and end the flow)
Prints "ok ..." and exits 0, or prints what went wrong and exits 1."""
import hashlib
import socket
import struct
import sys
import time

addr, port, path, mode, local_port, expected = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5]), sys.argv[6]


def connect():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", local_port))
    s.settimeout(20)
    s.connect((addr, port))
    return s


def read_response(s, buf=b""):
    while b"\r\n\r\n" not in buf:
        chunk = s.recv(65536)
        if not chunk:
            raise SystemExit(f"connection closed before the response header ({len(buf)} bytes)")
        buf += chunk
    head, body = buf.split(b"\r\n\r\n", 1)
    status = head.split(b"\r\n", 1)[0].decode()
    length = None
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == b"content-length":
            length = int(v)
    if length is None:
        raise SystemExit(f"no Content-Length in {status}")
    while len(body) < length:
        chunk = s.recv(1 << 20)
        if not chunk:
            raise SystemExit(f"connection closed after {len(body)} of {length} body bytes")
        body += chunk
    return status, body[:length], body[length:]


def until_server_closes(s):
    """A "Connection: close" exchange: the whole response, then the server's FIN."""
    request(s, close=True)
    status, body, _ = read_response(s)
    check(status, body)
    if s.recv(1) != b"":
        raise SystemExit("server did not close")


def request(s, close=False):
    hdr = f"GET {path} HTTP/1.1\r\nHost: {addr}\r\n" + ("Connection: close\r\n" if close else "") + "\r\n"
    s.sendall(hdr.encode())


def check(status, body):
    if not status.endswith("200 OK"):
        raise SystemExit(f"status {status}")
    got = hashlib.sha256(body).hexdigest()
    if got != expected:
        raise SystemExit(f"body differs ({len(body)} bytes)")


s = connect()
if mode == "client-fin":
    request(s)
    check(*read_response(s)[:2])
    s.close()
elif mode == "server-fin":
    until_server_closes(s)
    s.close()
elif mode == "client-rst":
    request(s)
    check(*read_response(s)[:2])
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()
elif mode == "client-rst-mid":
    request(s)
    got = s.recv(65536)
    if not got.startswith(b"HTTP/1.1 200"):
        raise SystemExit("no response")
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()
elif mode == "half-close":
    request(s, close=True)
    s.shutdown(socket.SHUT_WR)
    status, body, rest = read_response(s)
    check(status, body)
    s.close()
elif mode == "server-rst":
    until_server_closes(s)
    s.sendall(b"data after the server closed\r\n")
    time.sleep(0.3)
    try:
        s.sendall(b"and more\r\n")
        time.sleep(0.2)
        s.sendall(b"and more\r\n")
        raise SystemExit("no RST from the server")
    except (ConnectionResetError, BrokenPipeError):
        pass
    s.close()
elif mode == "keepalive":
    rest = b""
    for i in range(3):
        request(s)
        status, body, rest = read_response(s, rest)
        check(status, body)
    s.close()
else:
    raise SystemExit(f"unknown mode {mode}")
print(f"ok {mode} from port {local_port}")
