"""The back end's view of the client: reads a pcap captured on the back end's interface and checks that,
within each connection to the service port, the client's TSvals never go back. The client sends them in
order; a segment whose TSval is older than one that arrived before it was overtaken on the way (through
the front end), and the back end's kernel drops it as a PAWS violation (RFC 7323) when it is older by
more than one tick (Linux's TCP_PAWS_WINDOW). Those are what this counts as failures. A step back of
exactly one tick is reported but passes: the client sends from two CPUs at once (ACKs from softirq,
window updates from the application), and those can cross on veth with no front end involved.
Capture headers only (the TSval is in the options): tcpdump -s 128 is enough.
Usage: tsval_order.py PCAP SERVICE_ADDR PORT. Prints the overtaken segments and a summary; exits 1 if
any, or if the capture holds no segment at all."""
import struct
import sys

from tcp_wire import packets, tcp_options

PCAP, SERVICE, PORT = sys.argv[1], sys.argv[2], int(sys.argv[3])
service = bytes(int(x) for x in SERVICE.split("."))

PAWS_WINDOW = 1
latest = {}  # (client address, client port) -> newest TSval seen
segments = overtaken = within_window = 0
for pkt in packets(PCAP, headers_only=True):
    if len(pkt) < 40 or pkt[0] >> 4 != 4 or pkt[9] != 6 or pkt[16:20] != service:
        continue
    ihl = (pkt[0] & 15) * 4
    tcp = pkt[ihl:]
    sport, dport = struct.unpack("!HH", tcp[:4])
    if dport != PORT:
        continue
    ts = tcp_options(tcp[20:(tcp[12] >> 4) * 4]).get(8)
    if ts is None or len(ts) != 8:
        continue
    segments += 1
    tsval = struct.unpack("!I", ts[:4])[0]
    key = (pkt[12:16], sport)
    prev = latest.get(key)
    back = (prev - tsval) % 2**32 if prev is not None else 0
    if 0 < back <= PAWS_WINDOW:
        within_window += 1
        continue
    if 0 < back < 2**31:
        overtaken += 1
        if overtaken <= 20:
            addr = ".".join(str(b) for b in key[0])
            print(f"OVERTAKEN: {addr}:{sport} TSval {tsval} arrived after {prev} (flags 0x{tcp[13]:02x})")
        continue
    latest[key] = tsval

print(f"tsval_order: {len(latest)} connections, {segments} client segments, {overtaken} overtaken beyond "
      f"the PAWS window, {within_window} within it")
sys.exit(1 if overtaken or segments == 0 else 0)
