#include "core/packet_build.hpp"

namespace baton {

namespace {
// Sets the IPv4 total length, then recomputes both checksums from scratch (packets built here are small
// and rare: no need for incremental updates).
Bytes finish(Bytes b) {
  store16(b, 2, static_cast<uint16_t>(b.size()));
  auto pkt = TcpPacket::parse(b);
  if (pkt) pkt->fill_checksums();
  return b;
}
}  // namespace

Bytes strip_payload(const TcpPacket& pkt) {
  ByteView all = pkt.bytes();
  return finish(Bytes(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(pkt.payload_offset())));
}

Bytes make_data_segment(ByteView header_template, uint32_t seq, ByteView payload, bool push) {
  Bytes b(header_template.begin(), header_template.end());
  b.insert(b.end(), payload.begin(), payload.end());
  size_t l4 = size_t{b[0] & 0x0fu} * 4;
  store32(b, l4 + 4, seq);
  if (push) b[l4 + 13] |= tcp_flag::kPsh;
  return finish(std::move(b));
}

namespace {
Bytes bare_segment(const FlowKey& key, uint32_t seq, uint32_t ack, uint8_t flags) {
  Bytes b(40, 0);
  b[0] = 0x45;
  b[8] = 64;  // TTL
  b[9] = 6;
  store32(b, 12, key.saddr);
  store32(b, 16, key.daddr);
  store16(b, 20, key.sport);
  store16(b, 22, key.dport);
  store32(b, 24, seq);
  store32(b, 28, ack);
  b[32] = 5 << 4;
  b[33] = flags;
  return finish(std::move(b));
}
}  // namespace

Bytes make_reset(const FlowKey& key, uint32_t seq) {
  return bare_segment(key, seq, 0, tcp_flag::kRst);
}

Bytes make_ack(const FlowKey& key, uint32_t seq, uint32_t ack) {
  Bytes b = bare_segment(key, seq, ack, tcp_flag::kAck);
  store16(b, 34, 502);  // an ordinary window: a zero one would read as a window probe
  return finish(std::move(b));
}

}  // namespace baton
