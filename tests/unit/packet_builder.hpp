// Builds IPv4 + TCP packets for tests, with options laid out the way Linux lays them out.
#pragma once

#include <cstdint>
#include <optional>
#include <utility>
#include <vector>

#include "core/bytes.hpp"
#include "core/packet.hpp"

namespace baton::test {

inline constexpr uint32_t kClient = 0x0a000064;  // 10.0.0.100
inline constexpr uint32_t kNode1 = 0x0a000001;   // 10.0.0.1
inline constexpr uint32_t kNode2 = 0x0a000002;   // 10.0.0.2

struct Segment {
  uint32_t saddr = kClient;
  uint32_t daddr = kNode1;
  uint16_t sport = 40000;
  uint16_t dport = 80;
  uint32_t seq = 0;
  uint32_t ack = 0;
  uint8_t flags = tcp_flag::kAck;
  uint16_t window = 502;
  std::optional<uint16_t> mss;
  std::optional<uint8_t> wscale;
  bool sack_permitted = false;
  std::optional<std::pair<uint32_t, uint32_t>> timestamps;  // TSval, TSecr
  std::vector<std::pair<uint32_t, uint32_t>> sack;
  bool fast_open = false;
  bool misalign = false;  // one leading NOP: every option field lands on an odd offset
  Bytes payload;
};

Bytes build(const Segment& s);

// The segment a Linux client would send, with timestamps.
Segment client_syn(uint32_t isn, uint32_t tsval);
// A segment the node at saddr sends the client from port 80 (flags and numbers as given, no options).
Segment server_segment(uint32_t saddr, uint32_t seq, uint32_t ack, uint8_t flags);
Segment server_synack(uint32_t saddr, uint32_t isn, uint32_t client_isn, uint32_t tsval, uint32_t tsecr,
                      uint8_t wscale);

inline Bytes as_bytes(std::string_view s) {
  return Bytes(s.begin(), s.end());
}

}  // namespace baton::test
