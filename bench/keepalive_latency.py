"""Latency of single keep-alive requests that change node against those that stay, one client, unloaded.

    keepalive_latency.py HOST PORT REQUESTS PATH=NODE...

Each connection asks for every path twice in a row, in turn (a b b c c a a ...): the second of a pair
stays on the node that answered the first (same holder), the first of a pair needs another node than the
one before (a request Baton moves the connection for; a relay picks another upstream). Connections are
renewed every 60 requests. The time of a request runs from its send to the last byte of its answer.
Prints one line: BATON_LAT move_n= move_p50_us= move_p99_us= stay_n= stay_p50_us= stay_p99_us= errors=
"""
import socket
import sys
import time


def read_response(sock, buf):
    """Reads one HTTP/1.1 response with Content-Length; returns (status, rest of the buffer)."""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed before the header")
        buf += chunk
    head, _, rest = buf.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    length = next(int(line.split(b":", 1)[1]) for line in lines[1:] if line.lower().startswith(b"content-length:"))
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed before the body's end")
        rest += chunk
    return status, rest[length:]


def percentile(values, p):
    if not values:
        return 0
    s = sorted(values)
    return s[min(len(s) - 1, int(len(s) * p / 100))]


def main():
    host, port, total = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    targets = [arg.rsplit("=", 1) for arg in sys.argv[4:]]
    sequence = [path for path, _ in targets for _ in range(2)]
    node_of = dict(targets)
    move, stay, errors = [], [], 0
    sock, buf, on_conn, prev = None, b"", 0, None
    for i in range(total):
        path = sequence[(i + 1) % len(sequence)]  # start mid-pair: the first request of a connection is neither
        if sock is None or on_conn == 60:
            if sock:
                sock.close()
            sock = socket.create_connection((host, port))
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            buf, on_conn, prev = b"", 0, None
        start = time.perf_counter_ns()
        try:
            sock.sendall(f"GET {path} HTTP/1.1\r\nHost: bench\r\n\r\n".encode())
            status, buf = read_response(sock, buf)
        except (OSError, ConnectionError, StopIteration, ValueError):
            errors += 1
            sock.close()
            sock = None
            continue
        took_us = (time.perf_counter_ns() - start) // 1000
        if status != 200:
            errors += 1
        elif prev is not None:
            (stay if node_of[path] == node_of[prev] else move).append(took_us)
        prev = path
        on_conn += 1
    if sock:
        sock.close()
    print(f"BATON_LAT move_n={len(move)} move_p50_us={percentile(move, 50)} move_p99_us={percentile(move, 99)} "
          f"stay_n={len(stay)} stay_p50_us={percentile(stay, 50)} stay_p99_us={percentile(stay, 99)} "
          f"errors={errors}")


if __name__ == "__main__":
    main()
