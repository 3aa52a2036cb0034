// Building packets from others: header-only copies, data segments on a header template, and resets.
#pragma once

#include <optional>
#include <utility>
#include <vector>

#include "core/bytes.hpp"
#include "core/packet.hpp"

namespace baton {

// A copy of the packet's IPv4 + TCP headers without payload (lengths and checksums fixed).
Bytes strip_payload(const TcpPacket& pkt);

// The packet's headers as a bare ACK at sequence number `seq`: no payload, FIN and PSH cleared (lengths
// and checksums fixed).
Bytes bare_ack(const TcpPacket& pkt, uint32_t seq);

// A data segment on the headers of `header_template` (which carries no payload) with the given sequence
// number and payload; PSH is set when `push` is true.
Bytes make_data_segment(ByteView header_template, uint32_t seq, ByteView payload, bool push);

// A segment without payload, built from scratch: the given header fields, a timestamp option (NOP, NOP,
// TSval, TSecr) and SACK blocks (NOP, NOP, SACK) when asked for, as Linux lays them out.
struct SegmentSpec {
  FlowKey key;
  uint32_t seq = 0;
  uint32_t ack = 0;
  uint8_t flags = 0;
  uint16_t window = 0;
  std::optional<std::pair<uint32_t, uint32_t>> timestamps;  // TSval, TSecr
  std::vector<std::pair<uint32_t, uint32_t>> sack;          // up to 4 blocks (3 with timestamps)
  bool dont_fragment = false;
};
Bytes make_segment(const SegmentSpec& spec);

// A bare RST with the given 4-tuple and sequence number, no options.
Bytes make_reset(const FlowKey& key, uint32_t seq);

// A bare ACK, no options, with the given numbers. With a sequence number the receiver already has, it
// is out of its window: the receiver answers with an ACK naming exactly where it stands (RFC 793).
Bytes make_ack(const FlowKey& key, uint32_t seq, uint32_t ack);

}  // namespace baton
