#include <gtest/gtest.h>

#include "core/translate.hpp"
#include "tests/unit/packet_builder.hpp"

namespace baton {
namespace {

Translation wrapping() {
  Translation t;
  t.frontend_addr = test::kNode1;
  t.backend_addr = test::kNode2;
  t.isn1 = 0xfffffff0;  // the client's view wraps past 2^32 after 16 bytes
  t.isn2 = 0x00000100;
  t.ts_offset = 0x80000000;
  t.timestamps = true;
  t.frontend_wscale = 7;
  t.backend_wscale = 7;
  return t;
}

TEST(Translate, ClientToBackendRewritesAckSackTsecrAndAddress) {
  Translation t = wrapping();
  test::Segment s;
  s.ack = 0x00000010;  // isn1 + 0x20, past the wrap
  s.timestamps = {{1000, 0x80000005}};
  s.sack = {{0x00000020, 0x00000030}, {0xfffffff8, 0x00000004}};
  Bytes b = test::build(s);
  auto pkt = TcpPacket::parse(b);
  rewrite_client_to_backend(t, *pkt);
  EXPECT_EQ(pkt->daddr(), test::kNode2);
  EXPECT_EQ(pkt->saddr(), test::kClient);
  EXPECT_EQ(pkt->ack(), 0x120u);
  EXPECT_EQ(pkt->sack_blocks()[0], std::make_pair(0x130u, 0x140u));
  EXPECT_EQ(pkt->sack_blocks()[1], std::make_pair(0x108u, 0x114u));
  EXPECT_EQ(pkt->tsecr(), 5u);
  EXPECT_EQ(pkt->tsval(), 1000u);  // the client's own clock is never touched
  EXPECT_TRUE(pkt->ip_checksum_ok());
  EXPECT_TRUE(pkt->tcp_checksum_ok());
}

TEST(Translate, BackendToClientRewritesSeqTsvalAndAddress) {
  Translation t = wrapping();
  test::Segment s = test::server_segment(test::kNode2, 0x101, 5000, tcp_flag::kAck);
  s.timestamps = {{0x7fffffff, 1000}};
  s.payload = test::as_bytes("HTTP/1.1 200 OK\r\n");
  Bytes b = test::build(s);
  auto pkt = TcpPacket::parse(b);
  rewrite_backend_to_client(t, *pkt);
  EXPECT_EQ(pkt->saddr(), test::kNode1);
  EXPECT_EQ(pkt->seq(), 0xfffffff1u);
  EXPECT_EQ(pkt->ack(), 5000u);  // the client's sequence space is the same on both nodes
  EXPECT_EQ(pkt->tsval(), 0xffffffffu);
  EXPECT_EQ(pkt->tsecr(), 1000u);
  EXPECT_TRUE(pkt->tcp_checksum_ok());
}

TEST(Translate, WithoutTimestampsLeavesOptionsAlone) {
  Translation t = wrapping();
  t.timestamps = false;
  test::Segment s;
  s.ack = 0x10;
  Bytes b = test::build(s);
  auto pkt = TcpPacket::parse(b);
  rewrite_client_to_backend(t, *pkt);
  EXPECT_EQ(pkt->ack(), 0x120u);
  EXPECT_TRUE(pkt->tcp_checksum_ok());
}

TEST(Translate, WindowRescale) {
  EXPECT_EQ(rescale_window(1000, 7, 7), 1000);
  EXPECT_EQ(rescale_window(1000, 9, 7), 4000);
  EXPECT_EQ(rescale_window(1000, 5, 7), 250);
  EXPECT_EQ(rescale_window(60000, 14, 0), 0xffff);  // clamped, never wraps
  EXPECT_EQ(rescale_window(1, 0, 7), 1);            // an open window never becomes zero
  EXPECT_EQ(rescale_window(0, 0, 7), 0);
}

TEST(Translate, WindowRescaledOnBackendReplies) {
  Translation t = wrapping();
  t.backend_wscale = 9;
  test::Segment s;
  s.saddr = test::kNode2;
  s.window = 100;
  Bytes b = test::build(s);
  auto pkt = TcpPacket::parse(b);
  rewrite_backend_to_client(t, *pkt);
  EXPECT_EQ(pkt->window(), 400);
  EXPECT_TRUE(pkt->tcp_checksum_ok());
}

}  // namespace
}  // namespace baton
