"""What the test tools that verify segments on the wire share: a pcap reader, the Internet checksum
(RFC 1071) and the TCP option list."""
import struct


def packets(path, headers_only=False):
    """The IPv4 packets of a pcap file (Ethernet or Linux cooked captures), as bytes from the IP header.
    A capture with a short snap length is refused unless the caller needs only headers."""
    with open(path, "rb") as f:
        hdr = f.read(24)
        magic = struct.unpack("<I", hdr[:4])[0]
        endian = "<" if magic in (0xA1B2C3D4, 0xA1B23C4D) else ">"
        linktype = struct.unpack(endian + "I", hdr[20:24])[0]
        while True:
            rh = f.read(16)
            if len(rh) < 16:
                return
            _, _, incl, orig = struct.unpack(endian + "IIII", rh)
            data = f.read(incl)
            if incl < orig and not headers_only:
                raise SystemExit("capture truncated packets (use a full snap length)")
            if linktype == 1:
                if data[12:14] != b"\x08\x00":
                    continue
                data = data[14:]
            elif linktype == 113:  # Linux cooked
                data = data[16:]
            yield data


def csum(data):
    """One's complement of the one's complement sum; 0 over a block that includes a valid checksum."""
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def tcp_options(opts):
    """The options of a TCP header (the bytes after the fixed 20) as {kind: value bytes}. Stops at the end
    of the list or at a malformed length, as a receiver would."""
    found, i = {}, 0
    while i < len(opts):
        kind = opts[i]
        if kind == 0:
            break
        if kind == 1:
            i += 1
            continue
        ln = opts[i + 1] if i + 1 < len(opts) else 0
        if ln < 2:
            break
        found[kind] = opts[i + 2:i + ln]
        i += ln
    return found
