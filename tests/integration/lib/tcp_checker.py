"""Client-side TCP checker: reads a pcap captured on the client's interface and verifies, for every
connection to the service port, what a client needs for a handed-off connection to look like one
ordinary connection from one peer:
  - every segment the client received has a valid IPv4 and TCP checksum (capture with the nodes'
    checksum offload off, so that sums are final on the wire);
  - the server's sequence space is continuous from its SYN/ACK: every byte the client acknowledged was
    sent, the stream has no hole at the end;
  - the server's TSvals never go backwards by more than a little reordering allows (PAWS);
  - no RST reaches the client on a connection that finished its request (FIN seen from the server);
  - no server segment carries more payload than the MSS the client announced in its SYN.
Usage: tcp_checker.py PCAP SERVICE_ADDR PORT. Prints one line per problem and exits 1 if any."""
import struct
import sys

from tcp_wire import csum, packets, tcp_options
from collections import defaultdict

PCAP, SERVICE, PORT = sys.argv[1], sys.argv[2], int(sys.argv[3])
REORDER_TS_SLACK = 200  # ms of TSval regression tolerated for reordered segments (veth reorders a little)


def ip_str(b):
    return ".".join(str(x) for x in b)


problems = []
conns = defaultdict(lambda: {"isn": None, "max_end": None, "max_ack": 0, "ts": None, "fin": False, "rst": False,
                             "mss": None, "packets": 0})
for pkt in packets(PCAP):
    if len(pkt) < 20 or pkt[0] >> 4 != 4 or pkt[9] != 6:
        continue
    ihl = (pkt[0] & 15) * 4
    total = struct.unpack("!H", pkt[2:4])[0]
    pkt = pkt[:total]
    src, dst = ip_str(pkt[12:16]), ip_str(pkt[16:20])
    tcp = pkt[ihl:]
    sport, dport, seq, ack = struct.unpack("!HHII", tcp[:12])
    doff = (tcp[12] >> 4) * 4
    flags = tcp[13]
    payload = len(tcp) - doff
    from_server = src == SERVICE and sport == PORT
    to_server = dst == SERVICE and dport == PORT
    if not (from_server or to_server):
        continue
    key = (dst, dport) if from_server else (src, sport)
    c = conns[key]
    c["packets"] += 1
    name = f"{key[0]}:{key[1]}"
    if from_server:
        if csum(pkt[:ihl]) != 0:
            problems.append(f"{name}: bad IPv4 checksum on a server segment seq {seq}")
        pseudo = pkt[12:20] + struct.pack("!BBH", 0, 6, len(tcp))
        if csum(pseudo + tcp) != 0:
            problems.append(f"{name}: bad TCP checksum on a server segment seq {seq}")
        # Options: timestamps.
        ts = tcp_options(tcp[20:doff]).get(8)
        tsval = struct.unpack("!I", ts[:4])[0] if ts is not None and len(ts) == 8 else None
        if flags & 0x02:  # SYN/ACK: a new connection on this port (or its retransmission)
            if c["isn"] is not None and seq != c["isn"]:
                c.update({"max_end": None, "max_ack": 0, "ts": None, "fin": False, "rst": False})
            c["isn"] = seq
            c["max_end"] = seq + 1
        elif c["isn"] is not None:
            end = seq + payload + (1 if flags & 0x01 else 0)
            if (end - c["isn"]) % 2**32 > (c["max_end"] - c["isn"]) % 2**32:
                c["max_end"] = end
        if tsval is not None:
            if c["ts"] is not None and ((c["ts"] - tsval) % 2**32) < 2**31 and (c["ts"] - tsval) % 2**32 > REORDER_TS_SLACK:
                problems.append(f"{name}: server TSval went back from {c['ts']} to {tsval}")
            if c["ts"] is None or ((tsval - c["ts"]) % 2**32) < 2**31:
                c["ts"] = tsval
        if flags & 0x01:
            c["fin"] = True
        if flags & 0x04 and c["fin"] is False and c["isn"] is not None and payload == 0 and (flags & 0x02) == 0:
            c["rst"] = True
        if c["mss"] and payload > c["mss"]:
            problems.append(f"{name}: a server segment of {payload} bytes exceeds the client's MSS {c['mss']}")
    else:
        if flags & 0x02 and not flags & 0x10 and doff > 20 and tcp[20] == 2 and tcp[21] == 4:
            c["mss"] = struct.unpack("!H", tcp[22:24])[0]
        if c["isn"] is not None and flags & 0x10:
            rel = (ack - c["isn"]) % 2**32
            if rel > c["max_ack"] and rel < 2**31:
                c["max_ack"] = rel

for (addr, port), c in conns.items():
    name = f"{addr}:{port}"
    if c["isn"] is None:
        continue
    sent = (c["max_end"] - c["isn"]) % 2**32
    if c["max_ack"] > sent:
        problems.append(f"{name}: client acknowledged {c['max_ack']} bytes of sequence space, the server sent {sent}: "
                        "a hole or a wrong sequence number")
    if c["rst"]:
        problems.append(f"{name}: the client received a RST before the server finished")

checked = sum(1 for c in conns.values() if c["isn"] is not None)
for p in problems[:50]:
    print("PROBLEM:", p)
print(f"tcp_checker: {checked} connections, {sum(c['packets'] for c in conns.values())} segments, {len(problems)} problems")
sys.exit(1 if problems or checked == 0 else 0)
