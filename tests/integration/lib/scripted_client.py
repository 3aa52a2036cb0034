"""A TCP client scripted segment by segment (raw sockets), checking every segment it receives.

Usage: scripted_client.py CLIENT_ADDR SERVICE_ADDR PORT PATH EXPECTED_SHA256 LOCAL_PORT [MODE,...]
Modes change one step: "reorder" sends the request's second segment before its first (the front end
must reassemble what it holds); "simultaneous-close" sends our FIN without acknowledging the server's,
as when both FINs cross on the wire, and acknowledges the server's FIN only after ours was acknowledged;
"old-timestamps" runs our timestamp clock far behind (as a client whose per-address-pair offset for this
front end is lower than for the one it used before from the same port).
The kernel's own TCP must not answer for our port (the caller drops its RSTs). The script:
  1. sends a SYN with Linux's options (MSS 1460, SACK permitted, timestamps, window scale 7);
  2. checks the SYN/ACK: acknowledges our ISN, offers MSS, SACK, timestamps, window scale;
  3. completes the handshake, sends the request in two segments and the second one twice (the
     duplicate must not reach the server twice);
  4. receives the response: every segment from the address it connected to, with valid IP and TCP
     checksums, acknowledging exactly our request, sequence numbers continuous from the SYN/ACK (our
     ACKs are cumulative; retransmissions are allowed), TSvals never below the SYN/ACK's and never going
     back, TSecr echoing a TSval we sent, no segment above our MSS;
  5. closes (FIN both ways) and checks the body against the expected SHA-256.
Prints what it saw and exits 1 on the first violation."""
import hashlib
import os
import random
import select
import socket
import struct
import sys
import time

from tcp_wire import csum, tcp_options

client, service, port, path, expected, lport = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5], int(sys.argv[6])
modes = set(sys.argv[7].split(",")) if len(sys.argv) > 7 else set()
FIN, SYN, RST, PSH, ACK = 1, 2, 4, 8, 16


def fail(msg):
    print("FAIL:", msg)
    sys.exit(1)


def pseudo(src, dst, length):
    return socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!BBH", 0, 6, length)


def build(seq, ack, flags, opts=b"", payload=b"", window=502):
    while len(opts) % 4:
        opts += b"\0"
    hdr = struct.pack("!HHIIBBHHH", lport, port, seq, ack, (20 + len(opts)) // 4 << 4, flags, window, 0, 0)
    seg = hdr + opts + payload
    c = csum(pseudo(client, service, len(seg)) + seg)
    return seg[:16] + struct.pack("!H", c) + seg[18:]


def ts_opt(val, ecr):
    return b"\x01\x01\x08\x0a" + struct.pack("!II", val, ecr)


def parse(pkt):
    ihl = (pkt[0] & 15) * 4
    if csum(pkt[:ihl]) != 0:
        fail("bad IPv4 checksum")
    total = struct.unpack("!H", pkt[2:4])[0]
    src, dst = socket.inet_ntoa(pkt[12:16]), socket.inet_ntoa(pkt[16:20])
    seg = pkt[ihl:total]
    sport, dport, seq, ack, off, flags, window = struct.unpack("!HHIIBBH", seg[:16])
    doff = (off >> 4) * 4
    o = tcp_options(seg[20:doff])
    return {"src": src, "dst": dst, "sport": sport, "dport": dport, "seq": seq, "ack": ack, "flags": flags,
            "window": window, "opts": o, "payload": seg[doff:], "raw": seg}


sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP)
sock.bind((client, 0))


def send(seg):
    sock.sendto(seg, (service, 0))


def recv(timeout=5.0):
    deadline = time.time() + timeout
    while True:
        left = deadline - time.time()
        if left <= 0:
            return None
        r, _, _ = select.select([sock], [], [], left)
        if not r:
            return None
        pkt = sock.recv(65535)
        p = parse(pkt)
        if p["dport"] != lport or p["sport"] != port:
            continue
        if p["src"] != service:
            fail(f"a segment from {p['src']}: the client must hear only {service}")
        if csum(pseudo(p["src"], p["dst"], len(p["raw"])) + p["raw"]) != 0:
            fail(f"bad TCP checksum on seq {p['seq']}")
        return p


isn = random.getrandbits(32)
# A real clock for TSvals (milliseconds), as Linux's: a TIME_WAIT on the server side accepts a new SYN
# on the same ports only with newer timestamps.
ts_shift = -10_000_000 if "old-timestamps" in modes else 0


def ms_clock():
    return (int(time.monotonic() * 1000) + ts_shift) & 0xFFFFFFFF


clock = [ms_clock()]


def tick():
    clock[0] = max(clock[0] + 1, ms_clock())
    return clock[0]


sent_tsvals = set()


def our_ts():
    v = tick()
    sent_tsvals.add(v)
    return v


v = our_ts()
send(build(isn, 0, SYN, b"\x02\x04\x05\xb4\x04\x02" + b"\x08\x0a" + struct.pack("!II", v, 0) + b"\x01\x03\x03\x07", window=64240))
synack = recv()
if synack is None:
    fail("no SYN/ACK")
if synack["flags"] & (SYN | ACK) != (SYN | ACK) or synack["ack"] != (isn + 1) % 2**32:
    fail(f"bad SYN/ACK: flags {synack['flags']:#x} ack {synack['ack']}")
for k, name in ((2, "MSS"), (4, "SACK permitted"), (8, "timestamps"), (3, "window scale")):
    if k not in synack["opts"]:
        fail(f"SYN/ACK without {name}")
isn1 = synack["seq"]
ts1, ecr1 = struct.unpack("!II", synack["opts"][8])
if ecr1 not in sent_tsvals:
    fail("SYN/ACK TSecr is not our TSval")
print(f"SYN/ACK: isn1 {isn1}, TSval {ts1}, wscale {synack['opts'][3][0]}, mss {struct.unpack('!H', synack['opts'][2])[0]}")

rcv_nxt = (isn1 + 1) % 2**32
send(build(isn + 1, rcv_nxt, ACK, ts_opt(our_ts(), ts1)))
request = f"GET {path} HTTP/1.1\r\nHost: {service}\r\nUser-Agent: scripted\r\nConnection: close\r\n\r\n".encode()
half = len(request) // 2
first = build(isn + 1, rcv_nxt, ACK, ts_opt(our_ts(), ts1), request[:half])
second = build(isn + 1 + half, rcv_nxt, ACK | PSH, ts_opt(our_ts(), ts1), request[half:])
if "reorder" in modes:
    send(second)
    send(first)
else:
    send(first)
    send(second)
send(second)  # a retransmission while the request is held: it must reach the server once
req_end = (isn + 1 + len(request)) % 2**32

data = {}
last_ts = ts1
fin_seq = None
deadline = time.time() + 30
while time.time() < deadline:
    p = recv()
    if p is None:
        fail("the response stalled")
    if p["flags"] & RST:
        fail("RST received")
    rel = (p["seq"] - rcv_nxt) % 2**32
    if p["flags"] & ACK and p["ack"] != req_end and not (p["flags"] & FIN and p["ack"] == req_end):
        # Before our request is acknowledged the server may still send its own pure ACKs of it.
        if (p["ack"] - req_end) % 2**32 < 2**31:
            fail(f"server acknowledges {p['ack']}, beyond our request's end {req_end}")
    if 8 in p["opts"]:
        tsval, tsecr = struct.unpack("!II", p["opts"][8])
        if (tsval - ts1) % 2**32 >= 2**31:
            fail(f"TSval {tsval} is below the SYN/ACK's {ts1}: PAWS would drop it")
        if (last_ts - tsval) % 2**32 < 2**31 and last_ts != tsval and (last_ts - tsval) % 2**32 > 1000:
            fail(f"TSval went back from {last_ts} to {tsval}")
        if (tsval - last_ts) % 2**32 < 2**31:
            last_ts = tsval
        if tsecr not in sent_tsvals:
            fail(f"TSecr {tsecr} echoes nothing we sent")
    elif p["flags"] & (SYN | FIN) == 0:
        fail("a segment without timestamps, which were negotiated")
    if len(p["payload"]) > 1460:
        fail(f"a {len(p['payload'])}-byte segment exceeds our MSS")
    if p["payload"]:
        if rel >= 2**31:
            pass  # an old retransmission
        else:
            data[(p["seq"] - (isn1 + 1)) % 2**32] = p["payload"]
    # Cumulative ACK over what we have contiguously.
    have = 0
    while have in data:
        have += len(data[have])
    if p["flags"] & FIN:
        fin_seq = (p["seq"] + len(p["payload"])) % 2**32
    ack_to = (isn1 + 1 + have) % 2**32
    if fin_seq is not None and ack_to == fin_seq:
        crossed = "simultaneous-close" in modes
        # Crossed FINs: ours acknowledges the data but not the server's FIN, which "was still on its way".
        send(build(req_end, ack_to if crossed else (fin_seq + 1) % 2**32, ACK | FIN, ts_opt(our_ts(), last_ts)))
        # Segments still in flight may come first; the ACK of our FIN must come.
        while True:
            last = recv(3.0)
            if last is None:
                fail("our FIN was not acknowledged")
            if last["flags"] & RST:
                fail("RST instead of the ACK of our FIN")
            if last["flags"] & ACK and last["ack"] == (req_end + 1) % 2**32:
                break
        if crossed:
            # The server is in CLOSING: our ACK of its FIN takes it to TIME_WAIT; nothing may follow but
            # a retransmission of its FIN.
            send(build((req_end + 1) % 2**32, (fin_seq + 1) % 2**32, ACK, ts_opt(our_ts(), last_ts)))
            extra = recv(1.0)
            if extra is not None and (extra["flags"] & RST or extra["payload"]):
                fail(f"after the crossed FINs: flags {extra['flags']:#x}, {len(extra['payload'])} bytes")
        break
    send(build(req_end, ack_to, ACK, ts_opt(our_ts(), last_ts)))
else:
    fail("no FIN within 30 s")

stream = b""
off = 0
while off in data:
    stream += data[off]
    off += len(data[off])
head, _, body = stream.partition(b"\r\n\r\n")
status = head.split(b"\r\n")[0].decode()
if not status.endswith("200 OK"):
    fail(f"status {status}")
if hashlib.sha256(body).hexdigest() != expected:
    fail(f"body differs ({len(body)} bytes)")
if stream.count(b"HTTP/1.1 200 OK") != 1:
    fail("the response came more than once (the duplicate request reached the server?)")
print(f"ok: {len(body)} body bytes in {len(data)} segments, sequence continuous from the SYN/ACK, "
      f"TSvals from {ts1} to {last_ts}, clean {'simultaneous ' if 'simultaneous-close' in modes else ''}close")
