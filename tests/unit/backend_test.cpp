#include <gtest/gtest.h>

#include "core/backend.hpp"
#include "tests/unit/action_util.hpp"
#include "tests/unit/packet_builder.hpp"

namespace baton {
namespace {

using test::all_of;
using test::messages;
using test::the_message;

constexpr uint32_t kIsn = 1000;
constexpr uint32_t kIsn1 = 5000;
constexpr uint32_t kIsn2 = 9000;

proto::HandoffRequest request(uint8_t granted = proto::granted::kTimestamps | proto::granted::kSack |
                                                proto::granted::kWindowScale) {
  proto::HandoffRequest r;
  r.flow = {test::kClient, test::kNode1, 40000, 80};
  r.isn1 = kIsn1;
  r.granted_options = granted;
  r.frontend_wscale = 7;
  r.frontend_mss = 1460;
  auto syn = test::client_syn(kIsn, 10);
  syn.fast_open = true;
  r.syn = test::build(syn);
  test::Segment ack;
  ack.seq = kIsn + 1;
  ack.ack = kIsn1 + 1;
  ack.timestamps = {{11, 20}};
  r.ack = test::build(ack);
  r.request = test::as_bytes("GET /two/x HTTP/1.1\r\n\r\n");
  return r;
}

class BackendTest : public ::testing::Test {
 protected:
  BackendTest() : be(BackendConfig{.self = 2, .service_addr = test::kNode2, .syn_retry_ms = 10}) {}
  // Replays a handoff and answers it with a SYN/ACK; returns the actions of that answer.
  Actions establish() {
    be.on_handoff_request(1, request(), 0);
    return be.on_local_packet(10, test::build(test::server_synack(test::kNode2, kIsn2, kIsn, 70, 10, 7)), 1);
  }
  // The web server's FIN once it has answered, acknowledging the client's FIN (which ends at kIsn + 31).
  static test::Segment server_fin_after_request() {
    test::Segment fin;
    fin.saddr = test::kNode2;
    fin.daddr = test::kClient;
    fin.sport = 80;
    fin.dport = 40000;
    fin.seq = kIsn2 + 1;
    fin.ack = kIsn + 31;
    fin.flags = tcp_flag::kAck | tcp_flag::kFin;
    return fin;
  }
  Backend be;
};

TEST_F(BackendTest, ReplayedSynOffersOnlyWhatTheFrontEndGranted) {
  auto a = be.on_handoff_request(1, request(proto::granted::kSack), 0);
  auto inj = all_of<InjectLocal>(a);
  ASSERT_EQ(inj.size(), 1u);
  auto syn = TcpPacket::parse(inj[0].packet);
  ASSERT_TRUE(syn);
  EXPECT_FALSE(syn->tsval());
  EXPECT_FALSE(syn->options().window_scale);
  EXPECT_TRUE(syn->options().sack_permitted);
  EXPECT_EQ(syn->options().fast_open_off, 0u) << "TFO cookies only hold for the node that made them";
  EXPECT_EQ(syn->options().mss, 1460);
  EXPECT_TRUE(syn->tcp_checksum_ok());
}

TEST_F(BackendTest, InvalidRequestsAreRefused) {
  auto r = request();
  r.isn1 += 1;  // the ACK does not acknowledge this ISN
  auto acks = messages<proto::HandoffAck>(be.on_handoff_request(1, r, 0));
  ASSERT_EQ(acks.size(), 1u);
  EXPECT_EQ(acks[0].refusal, proto::Refusal::kBadRequest);
  r = request();
  r.syn = {1, 2, 3};
  EXPECT_EQ(the_message<proto::HandoffAck>(be.on_handoff_request(1, r, 0)).refusal,
            proto::Refusal::kBadRequest);
  EXPECT_TRUE(be.flows().empty());
}

TEST_F(BackendTest, DuplicateLiveFlowIsRefused) {
  be.on_handoff_request(1, request(), 0);
  EXPECT_EQ(the_message<proto::HandoffAck>(be.on_handoff_request(1, request(), 0)).refusal,
            proto::Refusal::kDuplicate);
}

TEST_F(BackendTest, AnEarlierSocketsResetIsNotARefusal) {
  // The connection moved away from here and comes back: the reset of its old socket, destroyed when it
  // left, may still be queued when the new SYN is replayed. Only a reset at sequence number 0 answers a
  // SYN (RFC 793).
  be.on_handoff_request(1, request(), 0);
  test::Segment stale = test::server_segment(test::kNode2, 123456, kIsn + 1, tcp_flag::kRst | tcp_flag::kAck);
  auto a = be.on_local_packet(10, test::build(stale), 1);
  EXPECT_EQ(all_of<Verdict>(a), std::vector<Verdict>{drop(10)});
  EXPECT_TRUE(messages<proto::HandoffAck>(a).empty());
  EXPECT_EQ(be.flows().size(), 1u);
}

TEST_F(BackendTest, NoListenerAnswersWithRefusal) {
  be.on_handoff_request(1, request(), 0);
  test::Segment rst = test::server_segment(test::kNode2, 0, 0, tcp_flag::kRst | tcp_flag::kAck);
  auto a = be.on_local_packet(10, test::build(rst), 1);
  EXPECT_EQ(all_of<Verdict>(a), std::vector<Verdict>{drop(10)});
  EXPECT_EQ(the_message<proto::HandoffAck>(a).refusal, proto::Refusal::kNoListener);
  EXPECT_TRUE(be.flows().empty());
}

TEST_F(BackendTest, SynIsRetriedOnAClearedTupleThenRefused) {
  be.on_handoff_request(1, request(), 0);
  size_t replayed = 0;
  Actions a;
  for (uint64_t t = 1; t < 1000 && messages<proto::HandoffAck>(a).empty(); t += 5) {
    a = be.on_tick(t);
    // Unanswered: a TIME_WAIT or a live connection may swallow it; the retry looks at the tuple first.
    replayed += all_of<ReplayOnClearTuple>(a).size();
  }
  EXPECT_EQ(replayed, 3u);
  EXPECT_EQ(the_message<proto::HandoffAck>(a).refusal, proto::Refusal::kNoListener);
}

TEST_F(BackendTest, CapturedSynAckGivesTranslation) {
  auto a = establish();
  auto acks = messages<proto::HandoffAck>(a);
  ASSERT_EQ(acks.size(), 1u);
  EXPECT_EQ(acks[0].refusal, proto::Refusal::kNone);
  EXPECT_EQ(acks[0].ts_base, 70u);
  const auto& f = be.flows().begin()->second;
  EXPECT_EQ(f.xlate.ts_offset, 20u - 70u);
  EXPECT_EQ(f.xlate.isn2, kIsn2);
  EXPECT_EQ(f.state, BeState::kEstablished);
}

TEST_F(BackendTest, ClientResetClosesAndTellsTheFrontEnd) {
  establish();
  test::Segment rst;
  rst.daddr = test::kNode2;
  rst.seq = kIsn + 30;
  rst.flags = tcp_flag::kRst;
  auto a = be.on_client_packet(20, test::build(rst), 2);
  EXPECT_EQ(all_of<Verdict>(a), std::vector<Verdict>{accept(20)});
  auto closed = messages<proto::FlowClosed>(a);
  ASSERT_EQ(closed.size(), 1u);
  EXPECT_EQ(closed[0].reason, proto::CloseReason::kReset);
  EXPECT_EQ(closed[0].flow.daddr, test::kNode1);
  EXPECT_EQ(be.live_flows(), 0u);
}

TEST_F(BackendTest, AClientPacketDeliveredByUserSpaceIsNotedForTheKernelDatapath) {
  // This node is the flow's front end too: the FIN was held there and went into the stack without
  // passing tc, whose close tracking must learn of it all the same.
  establish();
  test::Segment fin;
  fin.daddr = test::kNode2;
  fin.seq = kIsn + 30;
  fin.ack = kIsn2 + 1;
  fin.flags = tcp_flag::kAck | tcp_flag::kFin;
  auto a = be.on_delivered_client_packet(test::build(fin), 2);
  EXPECT_TRUE(all_of<Verdict>(a).empty()) << "delivered already: no verdict of ours";
  CloseState seen;
  seen.client_fin = true;
  seen.client_fin_end = kIsn + 31;
  EXPECT_EQ(test::the_only(all_of<NoteClose>(a)),
            (NoteClose{{test::kClient, test::kNode2, 40000, 80}, seen}));
  EXPECT_EQ(be.live_flows(), 1u) << "the server has not closed";
  // Nothing new about the close: nothing to note.
  EXPECT_TRUE(all_of<NoteClose>(be.on_delivered_client_packet(test::build(fin), 3)).empty());
  fin.daddr = test::kNode1;
  EXPECT_TRUE(be.on_delivered_client_packet(test::build(fin), 3).empty()) << "no flow of ours";
}

// A FIN that passes user space (the programs detached, or draining at an attach) is noted before its
// verdict: the stack acknowledges it within the verdict, through tc egress, which must know the FIN by
// then to see the acknowledgement (switch_under_load left flows to idle_ms before). The same for the
// server's FIN, which the client acknowledges.
TEST_F(BackendTest, AFinIsNotedBeforeItsVerdict) {
  establish();
  auto position = [](const Actions& a, auto pred) {
    for (size_t i = 0; i < a.size(); ++i)
      if (pred(a[i])) return static_cast<int>(i);
    return -1;
  };
  auto is_note = [](const Action& x) { return std::holds_alternative<NoteClose>(x); };
  auto is_verdict = [](const Action& x) { return std::holds_alternative<Verdict>(x); };
  test::Segment fin;
  fin.daddr = test::kNode2;
  fin.seq = kIsn + 30;
  fin.ack = kIsn2 + 1;
  fin.flags = tcp_flag::kAck | tcp_flag::kFin;
  auto a = be.on_client_packet(30, test::build(fin), 2);
  ASSERT_GE(position(a, is_note), 0);
  EXPECT_LT(position(a, is_note), position(a, is_verdict)) << "the client's FIN";
  const test::Segment server_fin = server_fin_after_request();
  a = be.on_local_packet(31, test::build(server_fin), 3);
  ASSERT_GE(position(a, is_note), 0);
  EXPECT_LT(position(a, is_note), position(a, is_verdict)) << "the server's FIN";
}

// A close that straddles a detach of the kernel programs: they saw the client's FIN and the server's
// acknowledgement of it; user space sees the rest, and ends the flow with what they saw.
TEST_F(BackendTest, AClosePartlySeenByTheKernelEndsInUserSpace) {
  establish();
  const FlowKey key{test::kClient, test::kNode2, 40000, 80};
  CloseState kernel;
  kernel.client_fin = kernel.client_fin_acked = true;
  kernel.client_fin_end = kIsn + 31;
  EXPECT_TRUE(messages<proto::FlowClosed>(be.merge_close(key, kernel, 2)).empty());
  // The server's FIN, then the client's acknowledgement of it: both through user space now.
  const test::Segment server_fin = server_fin_after_request();
  auto a = be.on_local_packet(20, test::build(server_fin), 3);
  EXPECT_TRUE(messages<proto::FlowClosed>(a).empty()) << "the client has not acknowledged the FIN yet";
  test::Segment last;
  last.daddr = test::kNode2;
  last.seq = kIsn + 31;
  last.ack = kIsn2 + 2;
  a = be.on_client_packet(21, test::build(last), 4);
  const auto closed = messages<proto::FlowClosed>(a);
  ASSERT_EQ(closed.size(), 1u);
  EXPECT_EQ(closed[0].reason, proto::CloseReason::kFin);
  EXPECT_EQ(be.live_flows(), 0u);
  // What user space saw goes to the kernel's record too (for an attach before the end).
  const auto notes = all_of<NoteClose>(a);
  ASSERT_EQ(notes.size(), 1u);
  EXPECT_TRUE(notes[0].close.closed());
}

TEST(CloseState, FinsAcknowledgedOrAResetEndIt) {
  CloseState s;
  s.on_client(tcp_flag::kAck | tcp_flag::kFin, 101, 500);
  s.on_server(tcp_flag::kAck, 600, 100);
  EXPECT_FALSE(s.client_fin_acked) << "the acknowledgement stops short of the FIN";
  s.on_server(tcp_flag::kAck | tcp_flag::kFin, 601, 101);
  EXPECT_TRUE(s.client_fin_acked);
  EXPECT_FALSE(s.closed());
  s.on_client(tcp_flag::kAck, 101, 601);
  EXPECT_TRUE(s.closed());
  // Our own socket's acknowledgement of the client's FIN never passes a user-space datapath.
  CloseState own = s;
  own.client_fin_acked = false;
  EXPECT_FALSE(own.closed());
  EXPECT_TRUE(own.closed(/*own_socket=*/true));
  CloseState r;
  r.on_server(tcp_flag::kRst, 0, 0);
  EXPECT_TRUE(r.closed());
}

TEST(CloseState, MergeKeepsTheFirstFinEnds) {
  CloseState a;
  a.on_client(tcp_flag::kFin, 101, 0);
  CloseState b;
  b.on_client(tcp_flag::kFin, 101, 0);
  b.on_server(tcp_flag::kFin | tcp_flag::kAck, 601, 101);
  a.merge(b);
  EXPECT_EQ(a.client_fin_end, 101u);
  EXPECT_TRUE(a.server_fin);
  EXPECT_EQ(a.server_fin_end, 601u);
  EXPECT_TRUE(a.client_fin_acked);
  EXPECT_FALSE(a.server_fin_acked);
  CloseState other;
  other.on_client(tcp_flag::kFin, 999, 0);  // cannot differ in practice; the first one seen stands
  a.merge(other);
  EXPECT_EQ(a.client_fin_end, 101u);
}

TEST_F(BackendTest, AConnectionOurStackServesItselfIsAdoptedUnchangedAndMovesAway) {
  // Node 2 is the front end of this connection too: its stack accepted it; the back end takes the socket
  // with a translation that changes nothing.
  const FlowKey own{test::kClient, test::kNode2, 40000, 80};
  Translation same;
  same.frontend_addr = same.backend_addr = test::kNode2;
  same.isn1 = same.isn2 = kIsn1;
  auto a = be.adopt_local_socket(AdoptLocalSocket{own, same, kIsn}, 1);
  ASSERT_EQ(all_of<OffloadFlow>(a).size(), 1u);
  EXPECT_EQ(all_of<OffloadFlow>(a)[0].role, FlowRole::kBackend);
  // Its front end (this node) asks it to stop; the socket answered everything.
  a = be.on_quiesce(2, proto::Quiesce{own, false}, 2);
  EXPECT_EQ(all_of<SilenceFlow>(a).size(), 1u);
  SocketProbe done{true, true, 0, 0, 700, 30, 0, 1, 2};
  a = be.on_socket_probe(own, done, 3);
  const auto q = the_message<proto::Quiesced>(a);
  EXPECT_TRUE(q.ok);
  EXPECT_EQ(q.server_next, kIsn1 + 1 + 700);
  EXPECT_EQ(q.client_next, kIsn + 1 + 30);
  a = be.on_flow_closed(2, proto::FlowClosed{own, proto::CloseReason::kMigrated}, 4);
  EXPECT_EQ(all_of<AbortLocalSocket>(a).size(), 1u) << "let go; its reset is silenced";
  // The client comes back from the same port while that lingers: the new connection owes it nothing.
  a = be.on_new_connection(own);
  ASSERT_EQ(all_of<ForgetFlow>(a).size(), 1u);
  EXPECT_TRUE(be.flows().empty());
}

TEST_F(BackendTest, ANewConnectionFromThePortOfOneThatEndedOwesItNothing) {
  establish();
  const FlowKey local{test::kClient, test::kNode2, 40000, 80};
  EXPECT_TRUE(be.on_new_connection(local).empty()) << "live: a collision, judged by the replay rules";
  test::Segment rst;
  rst.daddr = test::kNode2;
  rst.seq = kIsn + 30;
  rst.flags = tcp_flag::kRst;
  be.on_client_packet(20, test::build(rst), 2);
  ASSERT_EQ(be.flows().size(), 1u) << "lingers";
  EXPECT_EQ(all_of<ForgetFlow>(be.on_new_connection(local)).size(), 1u);
  EXPECT_TRUE(be.flows().empty());
}

TEST_F(BackendTest, OurOwnSocketEndsWithoutSeeingTheAckOfTheClientsFin) {
  // Under NFQUEUE only our stack's FINs and resets are queued: the bare acknowledgement of the client's
  // FIN never shows.
  const FlowKey own{test::kClient, test::kNode2, 40000, 80};
  Translation same;
  same.frontend_addr = same.backend_addr = test::kNode2;
  same.isn1 = same.isn2 = kIsn1;
  be.adopt_local_socket(AdoptLocalSocket{own, same, kIsn}, 1);
  test::Segment fin;
  fin.saddr = test::kNode2;
  fin.daddr = test::kClient;
  fin.sport = 80;
  fin.dport = 40000;
  fin.seq = kIsn1 + 1 + 100;
  fin.ack = kIsn + 1 + 30;
  fin.flags = tcp_flag::kAck | tcp_flag::kFin;
  be.on_local_packet(20, test::build(fin), 2);
  test::Segment cfin;
  cfin.daddr = test::kNode2;
  cfin.seq = kIsn + 1 + 30;
  cfin.ack = kIsn1 + 1 + 101;
  cfin.flags = tcp_flag::kAck | tcp_flag::kFin;
  auto a = be.on_delivered_client_packet(test::build(cfin), 3);
  EXPECT_EQ(be.live_flows(), 0u);
  EXPECT_EQ(messages<proto::FlowClosed>(a).size(), 1u);
}

TEST_F(BackendTest, CancelFromTheFrontEndResetsTheLocalSocket) {
  establish();
  auto a = be.on_flow_closed(1, proto::FlowClosed{request().flow, proto::CloseReason::kCancelled}, 2);
  auto inj = all_of<InjectLocal>(a);
  ASSERT_EQ(inj.size(), 1u);
  auto rst = TcpPacket::parse(inj[0].packet);
  EXPECT_EQ(rst->flags(), tcp_flag::kRst);
  EXPECT_EQ(rst->daddr(), test::kNode2);
  EXPECT_EQ(rst->seq(), kIsn + 1 + request().request.size());
  EXPECT_TRUE(be.flows().empty());
}

TEST_F(BackendTest, IdleFlowsResetTheClientThroughTheKernel) {
  establish();
  auto a = be.on_tick(10'000'000);
  // The kernel aborts the socket: its reset, at the socket's own next sequence number, goes to the client.
  auto abort = all_of<AbortLocalSocket>(a);
  ASSERT_EQ(abort.size(), 1u);
  EXPECT_EQ(abort[0].key, (FlowKey{test::kClient, test::kNode2, 40000, 80}));
  EXPECT_EQ(all_of<InjectLocal>(a).size(), 1u)
      << "a socket the kernel no longer resets is reset as the client";
  EXPECT_EQ(the_message<proto::FlowClosed>(a).reason, proto::CloseReason::kIdle);
  EXPECT_EQ(be.live_flows(), 0u);
  // The flow lingers so that the kernel's reset is still translated on its way to the client.
  test::Segment rst = test::server_segment(test::kNode2, kIsn2 + 1 + 300, 0, tcp_flag::kRst | tcp_flag::kAck);
  auto out = all_of<Verdict>(be.on_local_packet(20, test::build(rst), 10'000'001));
  ASSERT_EQ(out.size(), 1u);
  ASSERT_FALSE(out[0].replacement.empty());
  Bytes sent = out[0].replacement;
  auto p = TcpPacket::parse(sent);
  EXPECT_EQ(p->saddr(), test::kNode1);
  EXPECT_EQ(p->seq(), kIsn1 + 1 + 300);
  EXPECT_TRUE(all_of<SendMessage>(be.on_tick(10'000'002)).empty()) << "the front end is told once";
  be.on_tick(10'000'000 + 2'001);
  EXPECT_TRUE(be.flows().empty());
}

TEST_F(BackendTest, AReplayedSynRejectedByATimeWaitClearsItAndGoesAgain) {
  be.on_handoff_request(1, request(), 0);
  // A TIME_WAIT of an older connection answers with a bare ACK (its own numbers) instead of a SYN/ACK.
  test::Segment tw_ack = test::server_segment(test::kNode2, 123456, 777, tcp_flag::kAck);
  auto a = be.on_local_packet(10, test::build(tw_ack), 1);
  EXPECT_EQ(all_of<Verdict>(a), std::vector<Verdict>{drop(10)}) << "the client must not see it";
  auto again = all_of<ReplayOnClearTuple>(a);
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].key, (FlowKey{test::kClient, test::kNode2, 40000, 80}));
  Bytes syn = again[0].syn;
  EXPECT_TRUE(TcpPacket::parse(syn)->has(tcp_flag::kSyn)) << "the SYN goes again";
  EXPECT_TRUE(messages<proto::HandoffAck>(a).empty());
  // Not forever: a live connection on the tuple answers every SYN with an ACK.
  for (int i = 0; i < 5; ++i)
    be.on_replay_blocked(FlowKey{test::kClient, test::kNode2, 40000, 80}, 2);
  EXPECT_EQ(be.counters().replays_blocked, 3u);
  // The SYN/ACK after the TIME_WAIT is gone establishes the flow as usual.
  auto ok = be.on_local_packet(11, test::build(test::server_synack(test::kNode2, kIsn2, kIsn, 70, 10, 7)), 3);
  EXPECT_EQ(messages<proto::HandoffAck>(ok).size(), 1u);
}

TEST_F(BackendTest, AReplayedSynCollidingWithALiveConnectionIsRefused) {
  be.on_handoff_request(1, request(), 0);
  const FlowKey local{test::kClient, test::kNode2, 40000, 80};
  be.on_replay_blocked(local, 1);
  auto a = be.on_replay_collided(local, 2);
  auto acks = messages<proto::HandoffAck>(a);
  ASSERT_EQ(acks.size(), 1u);
  EXPECT_EQ(acks[0].refusal, proto::Refusal::kDuplicate) << "the front end serves it itself";
  EXPECT_EQ(acks[0].flow, request().flow);
  EXPECT_TRUE(all_of<InjectLocal>(a).empty()) << "nothing may reach the live connection";
  EXPECT_TRUE(be.flows().empty());
}

TEST_F(BackendTest, FlowsOfAFrontEndThatLostThemAreResetThroughTheKernel) {
  establish();
  EXPECT_TRUE(be.on_peer_lost_flows(3, 2).empty()) << "flows of other front ends are not concerned";
  auto a = be.on_peer_lost_flows(1, 2);
  auto abort = all_of<AbortLocalSocket>(a);
  ASSERT_EQ(abort.size(), 1u);
  EXPECT_EQ(abort[0].key, (FlowKey{test::kClient, test::kNode2, 40000, 80}));
  EXPECT_TRUE(all_of<SendMessage>(a).empty()) << "the front end knows the flow no more";
  EXPECT_EQ(be.live_flows(), 0u);
  EXPECT_EQ(be.flows().size(), 1u) << "lingers: the kernel's reset is still translated";
}

TEST_F(BackendTest, UnrelatedPacketsPassUntouched) {
  establish();
  test::Segment other;
  other.sport = 40001;
  other.daddr = test::kNode2;
  Bytes b = test::build(other);
  EXPECT_FALSE(be.owns_client_packet(TcpPacket::parse(b)->key()));
  EXPECT_EQ(all_of<Verdict>(be.on_client_packet(1, test::build(other), 2)), std::vector<Verdict>{accept(1)});
}

}  // namespace
}  // namespace baton

namespace baton {
namespace {

TEST_F(BackendTest, WatchesBeforeReplayAndOffloadsBeforeTheAck) {
  auto a = be.on_handoff_request(1, request(), 0);
  ASSERT_EQ(a.size(), 2u);
  EXPECT_TRUE(std::holds_alternative<WatchFlow>(a[0]));
  EXPECT_TRUE(std::holds_alternative<InjectLocal>(a[1]));
  FlowKey key = std::get<WatchFlow>(a[0]).key;
  EXPECT_EQ(key.daddr, test::kNode2);
  // The same capture as a kernel datapath reports it.
  a = be.on_synack_captured(key, SynAckFacts{kIsn2, kIsn + 1, 70, 7, 1460, true}, 1);
  ASSERT_FALSE(a.empty());
  ASSERT_TRUE(std::holds_alternative<OffloadFlow>(a[0])) << "translation in place before the replay";
  EXPECT_EQ(std::get<OffloadFlow>(a[0]).xlate.ts_offset, 20u - 70u);
  EXPECT_TRUE(std::holds_alternative<InjectLocal>(a[1]));
  // A close the datapath saw: the front end is told, the state lingers, then is forgotten.
  auto closed = messages<proto::FlowClosed>(be.on_datapath_closed(key, true, 2));
  ASSERT_EQ(closed.size(), 1u);
  EXPECT_EQ(closed[0].reason, proto::CloseReason::kReset);
  EXPECT_EQ(all_of<ForgetFlow>(be.on_tick(100'000)).size(), 1u);
}

TEST_F(BackendTest, RefusalReportedByTheDatapath) {
  auto a = be.on_handoff_request(1, request(), 0);
  FlowKey key = test::the_only(all_of<WatchFlow>(a)).key;
  a = be.on_replay_refused(key, 1);
  EXPECT_EQ(the_message<proto::HandoffAck>(a).refusal, proto::Refusal::kNoListener);
  EXPECT_EQ(all_of<ForgetFlow>(a).size(), 1u);
}

TEST_F(BackendTest, AReplayTheDatapathHadNoRoomForIsRefusedAsOverloaded) {
  auto a = be.on_handoff_request(1, request(), 0);
  FlowKey key = test::the_only(all_of<WatchFlow>(a)).key;
  a = be.on_untracked(key);
  EXPECT_EQ(the_message<proto::HandoffAck>(a).refusal, proto::Refusal::kOverloaded);
  EXPECT_EQ(all_of<ForgetFlow>(a).size(), 1u);
  EXPECT_TRUE(be.flows().empty());
}

// Multiple handoff: the front end wants the flow stopped before its next request goes elsewhere.
TEST_F(BackendTest, QuiesceAnswersOnceEverythingSentIsAcknowledgedAndSilencesTheFlow) {
  establish();
  const FlowKey local{test::kClient, test::kNode2, 40000, 80};
  const proto::Quiesce q{request().flow, false};
  auto a = be.on_quiesce(1, q, 5);
  // Silent first, then look: whatever the socket sends after the look never reaches the client.
  ASSERT_EQ(a.size(), 2u);
  EXPECT_EQ(std::get<SilenceFlow>(a[0]), SilenceFlow{local});
  EXPECT_EQ(std::get<ProbeSocket>(a[1]), ProbeSocket{local});
  // Bytes still in flight: talk on (offloaded again), look again at the next tick.
  SocketProbe busy{true, true, 2, 0, 1000, 24, 0, 0, 0};
  a = be.on_socket_probe(local, busy, 6);
  EXPECT_EQ(all_of<OffloadFlow>(a).size(), 1u);
  EXPECT_TRUE(messages<proto::Quiesced>(a).empty());
  a = be.on_tick(26);
  EXPECT_EQ(all_of<SilenceFlow>(a).size(), 1u);
  EXPECT_EQ(all_of<ProbeSocket>(a).size(), 1u);
  // The request is not read yet, or read but not answered (the last data sent is older than the last
  // received): the answer is still to come.
  for (const SocketProbe& waiting :
       {SocketProbe{true, true, 0, 0, 1000, 24, 24, 0, 0}, SocketProbe{true, true, 0, 0, 1000, 24, 0, 30, 5},
        SocketProbe{true, true, 0, 0, 0, 24, 0, 5, 5}}) {  // never sent
    a = be.on_socket_probe(local, waiting, 26);
    EXPECT_TRUE(messages<proto::Quiesced>(a).empty());
    EXPECT_EQ(all_of<OffloadFlow>(a).size(), 1u);
  }
  SocketProbe idle{true, true, 0, 0, 0x100000010ULL, 24, 0, 5, 5};  // counts wrap like sequence numbers
  a = be.on_socket_probe(local, idle, 27);
  auto done = the_message<proto::Quiesced>(a);
  EXPECT_TRUE(done.ok);
  EXPECT_EQ(done.server_next, kIsn1 + 1 + 0x10);
  EXPECT_EQ(done.client_next, kIsn + 1 + 24);
  EXPECT_EQ(be.flows().at(local).state, BeState::kQuiesced);
  // While quiesced nothing of the flow reaches the client, a FIN included.
  test::Segment fin =
      test::server_segment(test::kNode2, kIsn2 + 1, kIsn + 25, tcp_flag::kFin | tcp_flag::kAck);
  EXPECT_EQ(all_of<Verdict>(be.on_local_packet(11, test::build(fin), 28)), std::vector<Verdict>{drop(11)});
  // Moved on: the socket goes without a sound (its reset is dropped too), the state after the linger.
  a = be.on_flow_closed(1, proto::FlowClosed{request().flow, proto::CloseReason::kMigrated}, 30);
  EXPECT_EQ(all_of<AbortLocalSocket>(a).size(), 1u);
  EXPECT_TRUE(all_of<InjectLocal>(a).empty()) << "no reset as the client: the client is still there";
  EXPECT_TRUE(messages<proto::FlowClosed>(a).empty());
  EXPECT_EQ(be.flows().at(local).state, BeState::kClosed);
  EXPECT_EQ(be.counters().flows_moved, 1u);
  // ... and the kernel's reset when the socket goes stays here, through the linger.
  test::Segment rst =
      test::server_segment(test::kNode2, kIsn2 + 1, kIsn + 25, tcp_flag::kRst | tcp_flag::kAck);
  EXPECT_EQ(all_of<Verdict>(be.on_local_packet(12, test::build(rst), 31)), std::vector<Verdict>{drop(12)});
}

TEST_F(BackendTest, QuiesceThatCannotCompleteLeavesTheFlowServingHere) {
  establish();
  const FlowKey local{test::kClient, test::kNode2, 40000, 80};
  const proto::Quiesce q{request().flow, false};
  be.on_quiesce(1, q, 5);
  SocketProbe busy{true, true, 1, 0, 0, 0, 0, 0, 0};
  auto a = be.on_socket_probe(local, busy, 5 + 2'000);
  EXPECT_FALSE(the_message<proto::Quiesced>(a).ok);
  EXPECT_EQ(all_of<OffloadFlow>(a).size(), 1u);
  EXPECT_EQ(be.flows().at(local).state, BeState::kEstablished);
  // A socket the server closed meanwhile stays (and ends) here.
  be.on_quiesce(1, q, 3000);
  SocketProbe closing{true, false, 0, 0, 0, 0, 0, 0, 0};
  EXPECT_FALSE(the_message<proto::Quiesced>(be.on_socket_probe(local, closing, 3001)).ok);
  // Unknown flows and other front ends get a no at once.
  EXPECT_FALSE(the_message<proto::Quiesced>(be.on_quiesce(3, q, 3002)).ok);
  // A move called off after the quiesce: back to serving.
  be.on_quiesce(1, q, 4000);
  be.on_socket_probe(local, SocketProbe{true, true, 0, 0, 0, 0, 0, 0, 0}, 4001);
  a = be.on_quiesce(1, proto::Quiesce{request().flow, true}, 4002);
  EXPECT_EQ(all_of<OffloadFlow>(a).size(), 1u);
  EXPECT_EQ(be.flows().at(local).state, BeState::kEstablished);
  EXPECT_EQ(be.counters().quiesce_failed, 3u);
}

}  // namespace
}  // namespace baton
