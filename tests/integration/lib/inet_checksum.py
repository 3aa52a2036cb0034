"""The Internet checksum (RFC 1071), for the test tools that verify segments on the wire."""
import struct


def csum(data):
    """One's complement of the one's complement sum; 0 over a block that includes a valid checksum."""
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF
