#include "tests/unit/packet_builder.hpp"

namespace baton::test {

Bytes build(const Segment& s) {
  Bytes opt;
  if (s.misalign) opt.push_back(tcp_opt::kNop);
  if (s.mss) {
    opt.insert(opt.end(), {tcp_opt::kMss, 4});
    put16(opt, *s.mss);
  }
  if (s.sack_permitted && s.timestamps) {
    opt.insert(opt.end(), {tcp_opt::kSackPermitted, 2});
  } else if (s.timestamps) {
    opt.insert(opt.end(), {tcp_opt::kNop, tcp_opt::kNop});
  } else if (s.sack_permitted) {
    opt.insert(opt.end(), {tcp_opt::kNop, tcp_opt::kNop, tcp_opt::kSackPermitted, 2});
  }
  if (s.timestamps) {
    opt.insert(opt.end(), {tcp_opt::kTimestamp, 10});
    put32(opt, s.timestamps->first);
    put32(opt, s.timestamps->second);
  }
  if (s.wscale) opt.insert(opt.end(), {tcp_opt::kNop, tcp_opt::kWindowScale, 3, *s.wscale});
  if (!s.sack.empty()) {
    opt.insert(opt.end(),
               {tcp_opt::kNop, tcp_opt::kNop, tcp_opt::kSack, static_cast<uint8_t>(2 + 8 * s.sack.size())});
    for (auto [l, r] : s.sack) {
      put32(opt, l);
      put32(opt, r);
    }
  }
  if (s.fast_open) opt.insert(opt.end(), {tcp_opt::kFastOpen, 10, 1, 2, 3, 4, 5, 6, 7, 8});
  while (opt.size() % 4)
    opt.push_back(tcp_opt::kEnd);

  Bytes b(20, 0);
  b[0] = 0x45;
  store16(b, 4, 0x1234);
  b[6] = 0x40;  // DF
  b[8] = 64;
  b[9] = 6;
  store32(b, 12, s.saddr);
  store32(b, 16, s.daddr);
  put16(b, s.sport);
  put16(b, s.dport);
  put32(b, s.seq);
  put32(b, s.ack);
  put8(b, static_cast<uint8_t>((20 + opt.size()) / 4 << 4));
  put8(b, s.flags);
  put16(b, s.window);
  put16(b, 0);
  put16(b, 0);
  b.insert(b.end(), opt.begin(), opt.end());
  b.insert(b.end(), s.payload.begin(), s.payload.end());
  store16(b, 2, static_cast<uint16_t>(b.size()));
  auto pkt = TcpPacket::parse(b);
  pkt->fill_checksums();
  return b;
}

Segment client_syn(uint32_t isn, uint32_t tsval) {
  Segment s;
  s.seq = isn;
  s.flags = tcp_flag::kSyn;
  s.window = 64240;
  s.mss = 1460;
  s.sack_permitted = true;
  s.timestamps = {{tsval, 0}};
  s.wscale = 7;
  return s;
}

Segment server_segment(uint32_t saddr, uint32_t seq, uint32_t ack, uint8_t flags) {
  Segment s;
  s.saddr = saddr;
  s.daddr = kClient;
  s.sport = 80;
  s.dport = 40000;
  s.seq = seq;
  s.ack = ack;
  s.flags = flags;
  return s;
}

Segment server_synack(uint32_t saddr, uint32_t isn, uint32_t client_isn, uint32_t tsval, uint32_t tsecr,
                      uint8_t wscale) {
  Segment s = server_segment(saddr, isn, client_isn + 1, tcp_flag::kSyn | tcp_flag::kAck);
  s.window = 65160;
  s.mss = 1460;
  s.sack_permitted = true;
  s.timestamps = {{tsval, tsecr}};
  s.wscale = wscale;
  return s;
}

}  // namespace baton::test
