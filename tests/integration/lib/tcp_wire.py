"""What the test tools that verify segments on the wire share: the Internet checksum (RFC 1071) and the
TCP option list."""
import struct


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
