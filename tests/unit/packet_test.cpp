#include <gtest/gtest.h>

#include "core/packet.hpp"
#include "core/packet_build.hpp"
#include "tests/unit/packet_builder.hpp"

namespace baton {
namespace {

using test::build;
using test::Segment;

TEST(Packet, ParsesLinuxSynOptions) {
  Bytes b = build(test::client_syn(1000, 555));
  auto pkt = TcpPacket::parse(b);
  ASSERT_TRUE(pkt) << pkt.error();
  EXPECT_EQ(pkt->saddr(), test::kClient);
  EXPECT_EQ(pkt->dport(), 80);
  EXPECT_EQ(pkt->seq(), 1000u);
  EXPECT_TRUE(pkt->has(tcp_flag::kSyn));
  EXPECT_EQ(pkt->options().mss, 1460);
  EXPECT_EQ(pkt->options().window_scale, 7);
  EXPECT_TRUE(pkt->options().sack_permitted);
  EXPECT_EQ(pkt->tsval(), 555u);
  EXPECT_EQ(pkt->tsecr(), 0u);
  EXPECT_TRUE(pkt->ip_checksum_ok());
  EXPECT_TRUE(pkt->tcp_checksum_ok());
}

TEST(Packet, ParsesSackBlocksOneToFour) {
  for (size_t n = 1; n <= 4; ++n) {
    Segment s;
    for (size_t i = 0; i < n; ++i)
      s.sack.push_back({static_cast<uint32_t>(100 * i), static_cast<uint32_t>(100 * i + 50)});
    if (n < 4) s.timestamps = {{1, 2}};  // 4 blocks leave no room for timestamps, as in real TCP
    Bytes b = build(s);
    auto pkt = TcpPacket::parse(b);
    ASSERT_TRUE(pkt) << pkt.error();
    ASSERT_EQ(pkt->options().sack_blocks, n);
    EXPECT_EQ(pkt->sack_blocks()[n - 1].second, 100 * (n - 1) + 50);
  }
}

TEST(Packet, RejectsMalformed) {
  Bytes good = build(test::client_syn(1, 2));
  struct Case {
    const char* name;
    std::function<void(Bytes&)> damage;
  } cases[] = {
      {"truncated below IP header", [](Bytes& b) { b.resize(10); }},
      {"IPv6 version", [](Bytes& b) { b[0] = 0x65; }},
      {"IHL too small", [](Bytes& b) { b[0] = 0x44; }},
      {"total length beyond buffer", [](Bytes& b) { store16(b, 2, static_cast<uint16_t>(b.size() + 1)); }},
      {"UDP", [](Bytes& b) { b[9] = 17; }},
      {"fragment", [](Bytes& b) { store16(b, 6, 0x2000); }},
      {"data offset beyond packet", [](Bytes& b) { b[32] = 0xf0; }},
      {"data offset below 5", [](Bytes& b) { b[32] = 0x40; }},
      {"option length zero", [](Bytes& b) { b[41] = 0; }},
      {"option runs past header", [](Bytes& b) { b[41] = 40; }},
  };
  for (auto& c : cases) {
    Bytes b = good;
    c.damage(b);
    EXPECT_FALSE(TcpPacket::parse(b)) << c.name;
  }
}

TEST(Packet, IgnoresLinkLayerPadding) {
  Segment s;
  Bytes b = build(s);
  size_t real = b.size();
  b.resize(real + 6, 0);
  auto pkt = TcpPacket::parse(b);
  ASSERT_TRUE(pkt);
  EXPECT_EQ(pkt->bytes().size(), real);
  EXPECT_EQ(pkt->payload_size(), 0u);
}

TEST(Packet, EditorsKeepChecksumsValidAlignedAndMisaligned) {
  for (bool misalign : {false, true}) {
    Segment s;
    s.misalign = misalign;
    s.timestamps = {{0xfffffff0, 0x10}};
    s.sack = {{1, 2}, {3, 4}};
    s.payload = test::as_bytes("hello, odd length");
    Bytes b = build(s);
    auto pkt = TcpPacket::parse(b);
    ASSERT_TRUE(pkt);
    pkt->set_saddr(0xc0a80101);
    pkt->set_daddr(0xc0a80102);
    pkt->set_seq(0xfffffffe);
    pkt->set_ack(7);
    pkt->set_window(1234);
    pkt->set_tsval(0x01020304);
    pkt->set_tsecr(0xa0b0c0d0);
    pkt->set_sack_block(1, 0xdeadbeef, 0xfeedface);
    EXPECT_TRUE(pkt->ip_checksum_ok()) << misalign;
    EXPECT_TRUE(pkt->tcp_checksum_ok()) << misalign;
    EXPECT_EQ(pkt->tsecr(), 0xa0b0c0d0u);
    EXPECT_EQ(pkt->sack_blocks()[1].first, 0xdeadbeefu);
    EXPECT_EQ(pkt->seq(), 0xfffffffeu);
  }
}

TEST(Packet, NopOptionKeepsLengthAndChecksum) {
  Segment s = test::client_syn(1, 2);
  s.fast_open = true;
  Bytes b = build(s);
  size_t size = b.size();
  auto pkt = TcpPacket::parse(b);
  ASSERT_TRUE(pkt);
  ASSERT_TRUE(pkt->options().fast_open_off);
  pkt->nop_option(pkt->options().fast_open_off, pkt->options().fast_open_len);
  EXPECT_EQ(pkt->options().fast_open_off, 0u);
  EXPECT_EQ(b.size(), size);
  EXPECT_TRUE(pkt->tcp_checksum_ok());
}

TEST(PacketBuild, StripPayloadAndDataSegment) {
  Segment s;
  s.seq = 100;
  s.timestamps = {{5, 6}};
  s.payload = test::as_bytes("GET / HTTP/1.1\r\n\r\n");
  Bytes b = build(s);
  auto pkt = TcpPacket::parse(b);
  Bytes hdr = strip_payload(*pkt);
  auto h = TcpPacket::parse(hdr);
  ASSERT_TRUE(h);
  EXPECT_EQ(h->payload_size(), 0u);
  EXPECT_TRUE(h->tcp_checksum_ok());
  Bytes seg = make_data_segment(hdr, 200, test::as_bytes("abc"), true);
  auto d = TcpPacket::parse(seg);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->seq(), 200u);
  EXPECT_TRUE(d->has(tcp_flag::kPsh));
  EXPECT_EQ(d->payload_size(), 3u);
  EXPECT_TRUE(d->tcp_checksum_ok());
  EXPECT_TRUE(d->ip_checksum_ok());
}

TEST(PacketBuild, SegmentWithTimestampsAndSackAsLinuxLaysThemOut) {
  SegmentSpec spec;
  spec.key = {test::kClient, test::kNode1, 40000, 80};
  spec.seq = 7;
  spec.ack = 9;
  spec.flags = tcp_flag::kAck;
  spec.window = 502;
  spec.timestamps = {{100, 200}};
  spec.sack = {{1, 2}, {3, 4}, {5, 6}, {7, 8}};  // one too many beside timestamps: 40 option bytes at most
  Bytes b = make_segment(spec);
  auto p = TcpPacket::parse(b);
  ASSERT_TRUE(p);
  EXPECT_TRUE(p->ip_checksum_ok());
  EXPECT_TRUE(p->tcp_checksum_ok());
  EXPECT_EQ(p->key(), spec.key);
  EXPECT_EQ(p->tsval(), 100u);
  EXPECT_EQ(p->tsecr(), 200u);
  ASSERT_EQ(p->options().sack_blocks, 3u);
  EXPECT_EQ(p->sack_blocks()[2], (std::pair<uint32_t, uint32_t>{5, 6}));
  EXPECT_EQ(p->payload_size(), 0u);
  EXPECT_EQ(p->window(), 502u);
}

TEST(PacketBuild, Reset) {
  FlowKey k{test::kClient, test::kNode1, 40000, 80};
  Bytes r = make_reset(k, 77);
  auto p = TcpPacket::parse(r);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->key(), k);
  EXPECT_EQ(p->flags(), tcp_flag::kRst);
  EXPECT_EQ(p->seq(), 77u);
  EXPECT_TRUE(p->tcp_checksum_ok());
  EXPECT_TRUE(p->ip_checksum_ok());
}

TEST(Address, FormatAndParse) {
  EXPECT_EQ(format_ipv4(0x0a000064), "10.0.0.100");
  EXPECT_EQ(parse_ipv4("10.0.0.100"), 0x0a000064u);
  EXPECT_FALSE(parse_ipv4("10.0.0"));
}

}  // namespace
}  // namespace baton
