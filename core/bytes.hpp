// Big-endian loads and stores on byte spans: the wire format of IPv4, TCP and the control protocol.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace baton {

using Bytes = std::vector<uint8_t>;
using ByteView = std::span<const uint8_t>;
using MutableBytes = std::span<uint8_t>;

inline uint16_t load16(ByteView b, size_t off) {
  return static_cast<uint16_t>((b[off] << 8) | b[off + 1]);
}
inline uint32_t load32(ByteView b, size_t off) {
  return (uint32_t{b[off]} << 24) | (uint32_t{b[off + 1]} << 16) | (uint32_t{b[off + 2]} << 8) | b[off + 3];
}
inline uint64_t load64(ByteView b, size_t off) {
  return (uint64_t{load32(b, off)} << 32) | load32(b, off + 4);
}
inline void store16(MutableBytes b, size_t off, uint16_t v) {
  b[off] = static_cast<uint8_t>(v >> 8);
  b[off + 1] = static_cast<uint8_t>(v);
}
inline void store32(MutableBytes b, size_t off, uint32_t v) {
  store16(b, off, static_cast<uint16_t>(v >> 16));
  store16(b, off + 2, static_cast<uint16_t>(v));
}

// Appenders for building messages.
inline void put8(Bytes& b, uint8_t v) {
  b.push_back(v);
}
inline void put16(Bytes& b, uint16_t v) {
  b.push_back(static_cast<uint8_t>(v >> 8));
  b.push_back(static_cast<uint8_t>(v));
}
inline void put32(Bytes& b, uint32_t v) {
  put16(b, static_cast<uint16_t>(v >> 16));
  put16(b, static_cast<uint16_t>(v));
}
inline void put64(Bytes& b, uint64_t v) {
  put32(b, static_cast<uint32_t>(v >> 32));
  put32(b, static_cast<uint32_t>(v));
}

// Sequence-space comparison (RFC 1982 style): true when a is before b, modulo 2^32.
inline bool seq_before(uint32_t a, uint32_t b) {
  return static_cast<int32_t>(a - b) < 0;
}
inline bool seq_after_eq(uint32_t a, uint32_t b) {
  return !seq_before(a, b);
}

}  // namespace baton
