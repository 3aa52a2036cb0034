#include "core/packet_build.hpp"

#include <algorithm>

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

Bytes bare_ack(const TcpPacket& pkt, uint32_t seq) {
  ByteView all = pkt.bytes();
  Bytes b(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(pkt.payload_offset()));
  const size_t l4 = size_t{b[0] & 0x0fu} * 4;
  store32(b, l4 + 4, seq);
  b[l4 + 13] &= static_cast<uint8_t>(~(tcp_flag::kFin | tcp_flag::kPsh));
  return finish(std::move(b));
}

Bytes make_data_segment(ByteView header_template, uint32_t seq, ByteView payload, bool push) {
  Bytes b(header_template.begin(), header_template.end());
  b.insert(b.end(), payload.begin(), payload.end());
  size_t l4 = size_t{b[0] & 0x0fu} * 4;
  store32(b, l4 + 4, seq);
  if (push) b[l4 + 13] |= tcp_flag::kPsh;
  return finish(std::move(b));
}

Bytes make_segment(const SegmentSpec& s) {
  const size_t sack_blocks = std::min<size_t>(s.sack.size(), s.timestamps ? 3 : 4);
  const size_t options = (s.timestamps ? 12 : 0) + (sack_blocks ? 4 + 8 * sack_blocks : 0);
  Bytes b(40 + options, 0);
  b[0] = 0x45;
  if (s.dont_fragment) b[6] = 0x40;
  b[8] = 64;  // TTL
  b[9] = 6;
  store32(b, 12, s.key.saddr);
  store32(b, 16, s.key.daddr);
  store16(b, 20, s.key.sport);
  store16(b, 22, s.key.dport);
  store32(b, 24, s.seq);
  store32(b, 28, s.ack);
  b[32] = static_cast<uint8_t>(((20 + options) / 4) << 4);
  b[33] = s.flags;
  store16(b, 34, s.window);
  size_t at = 40;
  if (s.timestamps) {
    b[at] = b[at + 1] = tcp_opt::kNop;
    b[at + 2] = tcp_opt::kTimestamp;
    b[at + 3] = 10;
    store32(b, at + 4, s.timestamps->first);
    store32(b, at + 8, s.timestamps->second);
    at += 12;
  }
  if (sack_blocks) {
    b[at] = b[at + 1] = tcp_opt::kNop;
    b[at + 2] = tcp_opt::kSack;
    b[at + 3] = static_cast<uint8_t>(2 + 8 * sack_blocks);
    for (size_t i = 0; i < sack_blocks; ++i) {
      store32(b, at + 4 + 8 * i, s.sack[i].first);
      store32(b, at + 8 + 8 * i, s.sack[i].second);
    }
  }
  return finish(std::move(b));
}

Bytes make_reset(const FlowKey& key, uint32_t seq) {
  SegmentSpec s;
  s.key = key;
  s.seq = seq;
  s.flags = tcp_flag::kRst;
  return make_segment(s);
}

Bytes make_ack(const FlowKey& key, uint32_t seq, uint32_t ack) {
  SegmentSpec s;
  s.key = key;
  s.seq = seq;
  s.ack = ack;
  s.flags = tcp_flag::kAck;
  s.window = 502;  // an ordinary window: a zero one would read as a window probe
  return make_segment(s);
}

}  // namespace baton
