// The two state machines wired together, with hand-made kernel answers: one whole handed-off connection,
// checked from the client's point of view.
#include <gtest/gtest.h>

#include "core/backend.hpp"
#include "core/frontend.hpp"
#include "tests/unit/action_util.hpp"
#include "tests/unit/packet_builder.hpp"

namespace baton {
namespace {

using test::all_of;
using test::messages;

constexpr uint32_t kClientIsn = 0xfffffff0;  // client sequence numbers wrap during the request
constexpr uint32_t kIsn1 = 0x7ffffff0;
constexpr uint32_t kIsn2 = 0xfffffffa;  // back-end sequence numbers wrap during the response
constexpr uint32_t kFeTs = 1'000'000;
constexpr uint32_t kBeTs = 4'000'000'000u;

struct Cluster {
  ContentMap map;
  Frontend fe;
  Backend be;
  Cluster()
      : fe(FrontendConfig{.self = 1}, map, PeerView{[](NodeId) { return true; }, [](NodeId) { return 0u; }},
           [](NodeId n) { return n == 2 ? test::kNode2 : test::kNode1; }),
        be(BackendConfig{.self = 2, .service_addr = test::kNode2}) {
    map.add({"/two/", {2}});
    map.set_default({1});
  }
};

TEST(HandoffRoundTrip, WholeConnectionAsTheClientSeesIt) {
  Cluster c;
  const Bytes request = test::as_bytes("GET /two/file HTTP/1.1\r\nHost: x\r\n\r\n");

  // Handshake on the front end.
  auto a = c.fe.on_client_packet(1, test::build(test::client_syn(kClientIsn, 500)), 0);
  ASSERT_EQ(all_of<Verdict>(a), std::vector<Verdict>{accept(1)});
  a = c.fe.on_local_synack(
      2, test::build(test::server_synack(test::kNode1, kIsn1, kClientIsn, kFeTs, 500, 7)), 0);
  ASSERT_EQ(all_of<Verdict>(a), std::vector<Verdict>{accept(2)});

  test::Segment ack;
  ack.seq = kClientIsn + 1;
  ack.ack = kIsn1 + 1;
  ack.timestamps = {{501, kFeTs}};
  a = c.fe.on_client_packet(3, test::build(ack), 1);
  EXPECT_TRUE(a.empty()) << "the handshake ACK is held";
  test::Segment data = ack;
  data.flags |= tcp_flag::kPsh;
  data.payload = request;
  a = c.fe.on_client_packet(4, test::build(data), 1);
  auto reqs = messages<proto::HandoffRequest>(a);
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].request, request);
  EXPECT_EQ(c.fe.flows().begin()->second.state, FeState::kHandoffPending);

  // The back end replays the SYN, addressed to itself.
  a = c.be.on_handoff_request(1, reqs[0], 2);
  auto inj = all_of<InjectLocal>(a);
  ASSERT_EQ(inj.size(), 1u);
  auto syn = TcpPacket::parse(inj[0].packet);
  ASSERT_TRUE(syn);
  EXPECT_EQ(syn->daddr(), test::kNode2);
  EXPECT_EQ(syn->seq(), kClientIsn);
  EXPECT_TRUE(syn->tcp_checksum_ok());

  // Its stack answers; the SYN/ACK is captured, the ACK and request replayed in back-end terms: one
  // segment, which completes the handshake and carries the request.
  auto be_synack = test::server_synack(test::kNode2, kIsn2, kClientIsn, kBeTs, 500, 9);
  a = c.be.on_local_packet(10, test::build(be_synack), 3);
  EXPECT_EQ(all_of<Verdict>(a), std::vector<Verdict>{drop(10)});
  inj = all_of<InjectLocal>(a);
  ASSERT_EQ(inj.size(), 1u);
  auto rdata = TcpPacket::parse(inj[0].packet);
  ASSERT_TRUE(rdata);
  EXPECT_TRUE(rdata->has(tcp_flag::kAck));
  EXPECT_EQ(rdata->ack(), kIsn2 + 1);
  EXPECT_EQ(rdata->tsecr(), kBeTs);
  EXPECT_EQ(rdata->daddr(), test::kNode2);
  EXPECT_EQ(rdata->seq(), kClientIsn + 1);
  EXPECT_EQ(Bytes(rdata->payload().begin(), rdata->payload().end()), request);
  EXPECT_EQ(rdata->window(), 0u) << "the back end may send nothing before the front end has switched";
  EXPECT_TRUE(rdata->tcp_checksum_ok());
  auto acks = messages<proto::HandoffAck>(a);
  ASSERT_EQ(acks.size(), 1u);
  EXPECT_EQ(acks[0].isn2, kIsn2);

  // The front end lets go of its own half-open connection and drops what the back end replayed.
  a = c.fe.on_handoff_ack(2, acks[0], 4);
  auto verdicts = all_of<Verdict>(a);
  EXPECT_EQ(verdicts, (std::vector<Verdict>{drop(3), drop(4)}));
  inj = all_of<InjectLocal>(a);
  ASSERT_EQ(inj.size(), 2u);
  // Then one ACK, the client's newest, opens the back end's window: sending starts once the switch is done.
  auto open = TcpPacket::parse(inj[0].packet);
  ASSERT_TRUE(open);
  EXPECT_EQ(open->flags(), tcp_flag::kAck);
  EXPECT_EQ(open->daddr(), test::kNode2);
  EXPECT_EQ(open->seq(), kClientIsn + 1 + static_cast<uint32_t>(request.size()));
  EXPECT_EQ(open->ack(), kIsn2 + 1);
  EXPECT_EQ(open->window(), data.window);
  EXPECT_EQ(open->tsval(), 501u);
  EXPECT_EQ(open->tsecr(), kBeTs);
  EXPECT_EQ(open->payload_size(), 0u);
  EXPECT_TRUE(open->tcp_checksum_ok());
  auto rst = TcpPacket::parse(inj[1].packet);
  EXPECT_EQ(rst->flags(), tcp_flag::kRst);
  EXPECT_EQ(rst->seq(), kClientIsn + 1);
  EXPECT_EQ(rst->daddr(), test::kNode1);

  // The response, straight from the back end, looks like the front end's continuation.
  test::Segment resp =
      test::server_segment(test::kNode2, kIsn2 + 1, kClientIsn + 1 + static_cast<uint32_t>(request.size()),
                           tcp_flag::kAck | tcp_flag::kPsh);
  resp.timestamps = {{kBeTs + 3, 501}};
  resp.payload = Bytes(100, 'r');
  a = c.be.on_local_packet(11, test::build(resp), 5);
  verdicts = all_of<Verdict>(a);
  ASSERT_EQ(verdicts.size(), 1u);
  auto out = TcpPacket::parse(verdicts[0].replacement);
  ASSERT_TRUE(out);
  EXPECT_EQ(out->saddr(), test::kNode1);
  EXPECT_EQ(out->seq(), kIsn1 + 1);
  EXPECT_EQ(out->tsval(), kFeTs + 3) << "the client's timestamps continue from the front end's";
  EXPECT_TRUE(out->tcp_checksum_ok());
  EXPECT_TRUE(out->ip_checksum_ok());

  // The client's acknowledgement goes through the front end, translated.
  test::Segment cack = ack;
  cack.seq = kClientIsn + 1 + static_cast<uint32_t>(request.size());
  cack.ack = kIsn1 + 101;
  cack.timestamps = {{502, kFeTs + 3}};
  a = c.fe.on_client_packet(5, test::build(cack), 6);
  verdicts = all_of<Verdict>(a);
  ASSERT_EQ(verdicts.size(), 1u);
  auto fwd = TcpPacket::parse(verdicts[0].replacement);
  EXPECT_EQ(fwd->daddr(), test::kNode2);
  EXPECT_EQ(fwd->ack(), kIsn2 + 101);
  EXPECT_EQ(fwd->tsecr(), kBeTs + 3);
  EXPECT_TRUE(fwd->tcp_checksum_ok());

  // The front end never lets its own retransmitted SYN/ACK reach the client again.
  a = c.fe.on_local_synack(
      6, test::build(test::server_synack(test::kNode1, kIsn1, kClientIsn, kFeTs, 500, 7)), 7);
  EXPECT_EQ(all_of<Verdict>(a), std::vector<Verdict>{drop(6)});

  // Close: back end FIN, client FIN+ACK, back end ACK.
  test::Segment fin = resp;
  fin.seq = kIsn2 + 101;
  fin.payload.clear();
  fin.flags = tcp_flag::kAck | tcp_flag::kFin;
  c.be.on_local_packet(12, test::build(fin), 8);
  Bytes client_fin = test::build(cack);
  {
    auto p = TcpPacket::parse(client_fin);
    p->set_flags(tcp_flag::kAck | tcp_flag::kFin);
    p->set_ack(kIsn1 + 102);
  }
  a = c.fe.on_client_packet(7, client_fin, 9);
  verdicts = all_of<Verdict>(a);
  ASSERT_EQ(verdicts.size(), 1u);
  c.be.on_client_packet(7, verdicts[0].replacement, 9);
  test::Segment last = fin;
  last.seq = kIsn2 + 102;
  last.ack = cack.seq + 1;
  last.flags = tcp_flag::kAck;
  a = c.be.on_local_packet(13, test::build(last), 10);
  auto closed = messages<proto::FlowClosed>(a);
  ASSERT_EQ(closed.size(), 1u);
  EXPECT_EQ(c.be.live_flows(), 0u);
  EXPECT_EQ(all_of<EndFlow>(c.fe.on_flow_closed(2, closed[0], 10)).size(), 1u)
      << "no adoption after a restart";
  EXPECT_EQ(c.fe.live_flows(), 0u);
  c.fe.on_tick(100'000);
  c.be.on_tick(100'000);
  EXPECT_TRUE(c.fe.flows().empty());
  EXPECT_TRUE(c.be.flows().empty());
}

}  // namespace
}  // namespace baton
