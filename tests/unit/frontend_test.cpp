#include <algorithm>

#include <gtest/gtest.h>

#include "core/frontend.hpp"
#include "tests/unit/action_util.hpp"
#include "tests/unit/packet_builder.hpp"

namespace baton {
namespace {

using test::all_of;
using test::messages;
using test::the_message;

constexpr uint32_t kIsn = 1000;
constexpr uint32_t kIsn1 = 5000;

// A remote request (packets 3: ACK, 4: request), then the client's FIN (5) while the handoff is pending.
struct PendingWithFin {
  Actions request;
  test::Segment ack;
  test::Segment fin;
  std::string req = "GET /two/x HTTP/1.1\r\n\r\n";
};

class FrontendTest : public ::testing::Test {
 protected:
  FrontendTest()
      : fe(FrontendConfig{.self = 1, .hold_timeout_ms = 100, .handoff_timeout_ms = 50}, map, peers(), addr) {
    map.add({"/two/", {2}});
    map.set_default({1});
  }
  static PeerView peers() {
    return {[](NodeId) { return true; }, [](NodeId) { return 0u; }};
  }
  static uint32_t addr(NodeId n) { return n == 2 ? test::kNode2 : test::kNode1; }

  // SYN and SYN/ACK seen (our window scale `our_wscale`) by `on`; returns the client's handshake ACK.
  test::Segment handshake() { return handshake_on(fe, 7); }
  static test::Segment handshake_on(Frontend& on, uint8_t our_wscale) {
    on.on_client_packet(1, test::build(test::client_syn(kIsn, 10)), 0);
    on.on_local_synack(2, test::build(test::server_synack(test::kNode1, kIsn1, kIsn, 20, 10, our_wscale)), 0);
    test::Segment ack;
    ack.seq = kIsn + 1;
    ack.ack = kIsn1 + 1;
    ack.timestamps = {{11, 20}};
    return ack;
  }
  // Handshake and a complete request for node 2's content: the actions carry the handoff request.
  Actions request_remote() {
    auto ack = handshake();
    fe.on_client_packet(3, test::build(ack), 1);
    return fe.on_client_packet(4, data(ack, 0, "GET /two/x HTTP/1.1\r\n\r\n"), 1);
  }
  // request_remote, then the client's FIN (with `window`) while the handoff is pending, held.
  PendingWithFin pending_with_fin(uint16_t window) {
    PendingWithFin p;
    p.ack = handshake();
    fe.on_client_packet(3, test::build(p.ack), 1);
    p.request = fe.on_client_packet(4, data(p.ack, 0, p.req), 1);
    p.fin = p.ack;
    p.fin.seq += static_cast<uint32_t>(p.req.size());
    p.fin.flags |= tcp_flag::kFin;
    p.fin.window = window;
    EXPECT_TRUE(fe.on_client_packet(5, test::build(p.fin), 2).empty()) << "held";
    return p;
  }
  // What the kernel datapath records of a connection it triages (its SYN's key, our SYN/ACK).
  static FlowKey triaged_key(Bytes syn) { return TcpPacket::parse(syn)->key(); }
  static SynAckFacts our_synack() {
    Bytes b = test::build(test::server_synack(test::kNode1, kIsn1, kIsn, 20, 10, 7));
    return SynAckFacts::of(*TcpPacket::parse(b));
  }
  // The back end's acceptance of the handoff request among `a`.
  static proto::HandoffAck accepted(const Actions& a, uint32_t isn2 = 9000) {
    proto::HandoffAck yes;
    yes.flow = messages<proto::HandoffRequest>(a).at(0).flow;
    yes.isn2 = isn2;
    return yes;
  }
  Bytes data(test::Segment s, uint32_t offset, std::string_view text) {
    s.seq += offset;
    s.flags |= tcp_flag::kPsh;
    s.payload = test::as_bytes(text);
    return test::build(s);
  }

  ContentMap map;
  Frontend fe;
};

TEST_F(FrontendTest, LocalContentReleasesHeldPacketsInOrderAndStaysWatched) {
  auto ack = handshake();
  EXPECT_TRUE(fe.on_client_packet(3, test::build(ack), 1).empty());
  const std::string req = "GET /one HTTP/1.1\r\n\r\n";
  auto a = fe.on_client_packet(4, data(ack, 0, req), 1);
  EXPECT_EQ(all_of<Verdict>(a), (std::vector<Verdict>{accept(3), accept(4)}));
  EXPECT_TRUE(all_of<SendMessage>(a).empty());
  EXPECT_EQ(fe.counters().served_locally, 1u);
  // This node's stack serves it; its back end takes the socket, with a translation that changes nothing,
  // and the datapath watches where the next request starts. All of it before the verdicts.
  ASSERT_TRUE(std::holds_alternative<AdoptLocalSocket>(a.at(0)));
  const auto& adopt = std::get<AdoptLocalSocket>(a[0]);
  EXPECT_EQ(adopt.client_isn, kIsn);
  EXPECT_EQ(adopt.xlate.isn1, kIsn1);
  EXPECT_EQ(adopt.xlate.isn2, kIsn1);
  EXPECT_EQ(adopt.xlate.ts_offset, 0u);
  EXPECT_EQ(adopt.xlate.frontend_wscale, adopt.xlate.backend_wscale);
  EXPECT_EQ(adopt.xlate.backend_addr, test::kNode1);
  ASSERT_TRUE(std::holds_alternative<OffloadFlow>(a.at(1)));
  EXPECT_EQ(std::get<OffloadFlow>(a[1]).watch,
            (RequestWatch{true, kIsn + 1 + static_cast<uint32_t>(req.size()), 1}));
  const FeFlow& f = fe.flows().begin()->second;
  EXPECT_EQ(f.state, FeState::kForwarding);
  EXPECT_EQ(f.backend, 1u);
}

TEST_F(FrontendTest, ARequestWhoseEndCannotBeToldIsServedHereUnwatched) {
  auto ack = handshake();
  fe.on_client_packet(3, test::build(ack), 1);
  auto a =
      fe.on_client_packet(4, data(ack, 0, "POST /one HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"), 1);
  EXPECT_EQ(all_of<Verdict>(a), (std::vector<Verdict>{accept(3), accept(4)}));
  EXPECT_TRUE(all_of<AdoptLocalSocket>(a).empty());
  auto gone = all_of<ForgetFlow>(a);
  ASSERT_EQ(gone.size(), 1u);
  EXPECT_TRUE(gone[0].to_local_stack) << "what is still on the slow path must reach the stack first";
  EXPECT_TRUE(fe.flows().empty());
}

TEST_F(FrontendTest, AConnectionServedHereMovesAwayForAnotherNodesContent) {
  auto ack = handshake();
  fe.on_client_packet(3, test::build(ack), 1);
  const std::string first = "GET /one HTTP/1.1\r\n\r\n";
  fe.on_client_packet(4, data(ack, 0, first), 1);
  test::Segment next = ack;
  next.seq = kIsn + 1 + static_cast<uint32_t>(first.size());
  next.ack = kIsn1 + 1 + 700;
  auto a = fe.on_client_packet(5, data(next, 0, "GET /two/x HTTP/1.1\r\n\r\n"), 2);
  EXPECT_TRUE(all_of<Verdict>(a).empty()) << "held";
  ASSERT_EQ(all_of<SendMessage>(a).size(), 1u);
  EXPECT_EQ(all_of<SendMessage>(a)[0].to, 1u) << "this node's own back end quiesces first";
  EXPECT_FALSE(the_message<proto::Quiesce>(a).resume);
  a = fe.on_quiesced(1, proto::Quiesced{fe.flows().begin()->first, true, kIsn1 + 1 + 700, next.seq}, 3);
  const auto req = the_message<proto::HandoffRequest>(a);
  EXPECT_EQ(all_of<SendMessage>(a)[0].to, 2u);
  EXPECT_EQ(req.isn1, kIsn1 + 700);
  a = fe.on_handoff_ack(2, accepted(a, 7000), 4);
  const auto closed = all_of<SendMessage>(a);
  ASSERT_EQ(closed.size(), 1u);
  EXPECT_EQ(closed[0].to, 1u) << "this node's back end lets its socket go";
  EXPECT_EQ(std::get<proto::FlowClosed>(closed[0].message).reason, proto::CloseReason::kMigrated);
  EXPECT_EQ(fe.flows().begin()->second.backend, 2u);
}

TEST_F(FrontendTest, RequestSplitOverSegmentsAndReordered) {
  auto ack = handshake();
  fe.on_client_packet(3, test::build(ack), 1);
  std::string req = "GET /two/x HTTP/1.1\r\nHost: h\r\n\r\n";
  EXPECT_TRUE(fe.on_client_packet(5, data(ack, 10, req.substr(10)), 1).empty());  // arrives first
  auto a = fe.on_client_packet(4, data(ack, 0, req.substr(0, 10)), 1);
  auto reqs = messages<proto::HandoffRequest>(a);
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].request, test::as_bytes(req));
  EXPECT_EQ(reqs[0].isn1, kIsn1);
  EXPECT_EQ(reqs[0].frontend_wscale, 7);
  EXPECT_EQ(reqs[0].granted_options,
            proto::granted::kTimestamps | proto::granted::kSack | proto::granted::kWindowScale);
}

// Kernel triage: the datapath followed the connection and gives it over at its first request segment,
// with the SYN and SYN/ACK it recorded; the bare ACK never comes (the kernel absorbed it).
TEST_F(FrontendTest, ATriagedFlowIsHandedOffFromItsFirstRequestSegment) {
  const Bytes syn = test::build(test::client_syn(kIsn, 10));
  const FlowKey key = triaged_key(syn);
  const SynAckFacts synack = our_synack();
  EXPECT_TRUE(fe.on_triaged(key, syn, synack, 0).empty()) << "no WatchFlow: the datapath tracks it";
  test::Segment ack;
  ack.seq = kIsn + 1;
  ack.ack = kIsn1 + 1;
  ack.timestamps = {{11, 20}};
  const std::string req = "GET /two/x HTTP/1.1\r\n\r\n";
  test::Segment late = ack;  // the request's second half, first, with the client's FIN
  late.flags |= tcp_flag::kFin;
  EXPECT_TRUE(fe.on_client_packet(4, data(late, 10, req.substr(10)), 1).empty());
  auto a = fe.on_client_packet(3, data(ack, 0, req.substr(0, 10)), 1);
  auto reqs = messages<proto::HandoffRequest>(a);
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].syn, syn);
  EXPECT_EQ(reqs[0].isn1, kIsn1);
  EXPECT_EQ(reqs[0].request, test::as_bytes(req));
  // The ACK the back end replays comes from a data segment: bare, at the start of the stream, no FIN.
  Bytes replayed_bytes = reqs[0].ack;
  auto replayed = TcpPacket::parse(replayed_bytes);
  ASSERT_TRUE(replayed);
  EXPECT_EQ(replayed->seq(), kIsn + 1);
  EXPECT_EQ(replayed->ack(), kIsn1 + 1);
  EXPECT_EQ(replayed->payload_size(), 0u);
  EXPECT_FALSE(replayed->has(tcp_flag::kFin));
  EXPECT_FALSE(replayed->has(tcp_flag::kPsh));
}

TEST_F(FrontendTest, ATriagedFlowServedLocallyGivesTheStackItsRequestInOrder) {
  const Bytes syn = test::build(test::client_syn(kIsn, 10));
  const FlowKey key = triaged_key(syn);
  const SynAckFacts synack = our_synack();
  fe.on_triaged(key, syn, synack, 0);
  test::Segment ack;
  ack.seq = kIsn + 1;
  ack.ack = kIsn1 + 1;
  EXPECT_TRUE(fe.on_client_packet(3, data(ack, 0, "GET /one HT"), 1).empty());
  auto a = fe.on_client_packet(4, data(ack, 11, "TP/1.1\r\n\r\n"), 1);
  EXPECT_EQ(all_of<Verdict>(a), (std::vector<Verdict>{accept(3), accept(4)}));
  EXPECT_EQ(all_of<OffloadFlow>(a).size(), 1u) << "served here, watched on";
  // A SYN the flow cannot use (not this tuple's) gives it to the stack at once.
  auto b = fe.on_triaged(FlowKey{1, 2, 3, 4}, syn, synack, 2);
  ASSERT_EQ(all_of<ForgetFlow>(b).size(), 1u);
  EXPECT_TRUE(all_of<ForgetFlow>(b)[0].to_local_stack);
}

TEST_F(FrontendTest, DuplicatesWhileHoldingAreDropped) {
  auto ack = handshake();
  fe.on_client_packet(3, test::build(ack), 1);
  EXPECT_TRUE(fe.on_client_packet(4, data(ack, 0, "GET /two/x HT"), 1).empty());
  EXPECT_EQ(all_of<Verdict>(fe.on_client_packet(5, data(ack, 0, "GET /two/x HT"), 1)),
            std::vector<Verdict>{drop(5)});
  EXPECT_EQ(all_of<Verdict>(fe.on_client_packet(6, test::build(ack), 1)), std::vector<Verdict>{drop(6)});
  EXPECT_EQ(fe.counters().duplicates_dropped, 2u);
}

TEST_F(FrontendTest, BadRequestIsServedLocally) {
  auto ack = handshake();
  fe.on_client_packet(3, test::build(ack), 1);
  auto a = fe.on_client_packet(4, data(ack, 0, "\x16\x03\x01 TLS hello"), 1);
  EXPECT_EQ(all_of<Verdict>(a), (std::vector<Verdict>{accept(3), accept(4)}));
  EXPECT_EQ(fe.counters().bad_requests, 1u);
  EXPECT_TRUE(fe.flows().empty());
  // Reported for the log (a rate-limited warning) even when decisions are not.
  const auto bad = test::the_only(all_of<Decided>(a));
  EXPECT_EQ(bad.kind, Decided::kBad);
  EXPECT_STREQ(bad.why, "invalid method character");
}

// A client packet that does not parse (broken options) but names a tracked flow is dropped and counted,
// as tc ingress does (BATON_DROP_MALFORMED): passed on, our stack would reset the client's connection.
// Another flow's passes: the stack judges it.
TEST_F(FrontendTest, MalformedPacketsOfATrackedFlowAreDropped) {
  auto ack = handshake();
  fe.on_client_packet(3, test::build(ack), 1);
  test::Segment broken = ack;
  broken.timestamps = {{12, 20}};
  Bytes bad = test::build(broken);
  ASSERT_GT(bad.size(), 20u + 23u);
  bad[20 + 23] = 40;  // the timestamp option's length runs past the header
  Bytes copy = bad;
  ASSERT_FALSE(TcpPacket::parse(copy));
  auto a = fe.on_client_packet(4, bad, 2);
  EXPECT_EQ(all_of<Verdict>(a), std::vector<Verdict>{drop(4)});
  EXPECT_EQ(a.size(), 1u);
  EXPECT_EQ(fe.counters().malformed_dropped, 1u);
  broken.sport = 40001;
  Bytes other = test::build(broken);
  other[20 + 23] = 40;
  EXPECT_EQ(all_of<Verdict>(fe.on_client_packet(5, other, 2)), std::vector<Verdict>{accept(5)});
  EXPECT_EQ(fe.counters().malformed_dropped, 1u);
}

// Decisions are reported for the debug log only when asked for: the common path builds nothing for it.
TEST_F(FrontendTest, DecisionsAreReportedWhenAskedFor) {
  EXPECT_TRUE(all_of<Decided>(request_remote()).empty());
  Frontend reporting(FrontendConfig{.self = 1, .report_decisions = true}, map, peers(), addr);
  auto ack = handshake_on(reporting, 7);
  reporting.on_client_packet(3, test::build(ack), 1);
  const auto d = test::the_only(
      all_of<Decided>(reporting.on_client_packet(4, data(ack, 0, "GET /two/x HTTP/1.1\r\n\r\n"), 1)));
  EXPECT_EQ(d.kind, Decided::kFirst);
  EXPECT_EQ(d.path, "/two/x");
  EXPECT_EQ(d.node, 2u);
  EXPECT_STRNE(d.why, "");
}

TEST_F(FrontendTest, HoldTimeoutServesLocally) {
  auto ack = handshake();
  fe.on_client_packet(3, test::build(ack), 1);
  fe.on_client_packet(4, data(ack, 0, "GET /two/"), 1);
  EXPECT_TRUE(fe.on_tick(50).empty());
  EXPECT_EQ(all_of<Verdict>(fe.on_tick(200)), (std::vector<Verdict>{accept(3), accept(4)}));
  EXPECT_TRUE(fe.flows().empty());
}

TEST_F(FrontendTest, HandoffTimeoutAbortsEverywhere) {
  auto ack = handshake();
  fe.on_client_packet(3, test::build(ack), 1);
  fe.on_client_packet(4, data(ack, 0, "GET /two/x HTTP/1.1\r\n\r\n"), 1);
  // The back end's answer may already be reaching the client, which acknowledges it to us.
  test::Segment acked = ack;
  acked.seq += 23;
  acked.ack = kIsn1 + 1 + 500;
  fe.on_client_packet(5, test::build(acked), 2);
  auto a = fe.on_tick(100);
  EXPECT_EQ(all_of<Verdict>(a), (std::vector<Verdict>{drop(3), drop(4), drop(5)})) << "never served twice";
  auto cancels = messages<proto::FlowClosed>(a);
  ASSERT_EQ(cancels.size(), 1u);
  EXPECT_EQ(cancels[0].reason, proto::CloseReason::kCancelled);
  auto resets = all_of<InjectLocal>(a);
  ASSERT_EQ(resets.size(), 2u);
  auto to_us = TcpPacket::parse(resets[0].packet);
  EXPECT_EQ(to_us->daddr(), test::kNode1);
  auto to_client = TcpPacket::parse(resets[1].packet);
  EXPECT_EQ(to_client->daddr(), test::kClient);
  EXPECT_EQ(to_client->seq(), kIsn1 + 1 + 500) << "in the client's window";
  EXPECT_TRUE(to_client->has(tcp_flag::kRst));
  EXPECT_EQ(fe.counters().handoffs_aborted, 1u);
  // A late ack is answered with a cancellation too.
  proto::HandoffAck late;
  late.flow = cancels[0].flow;
  EXPECT_EQ(messages<proto::FlowClosed>(fe.on_handoff_ack(2, late, 200)).size(), 1u);
}

// What batond answers a request no node can serve with, on a socket restored where the connection stands.
void expect_answered_unavailable(const Actions& a, uint32_t request_bytes, uint8_t our_wscale = 7) {
  EXPECT_EQ(all_of<Verdict>(a), (std::vector<Verdict>{drop(3), drop(4)})) << "the web server never sees it";
  const auto answers = all_of<AnswerHere>(a);
  ASSERT_EQ(answers.size(), 1u);
  const RepairedConnection& c = answers[0].conn;
  EXPECT_EQ(c.key, (FlowKey{test::kClient, test::kNode1, 40000, 80}));
  EXPECT_EQ(c.snd_nxt, kIsn1 + 1);
  EXPECT_EQ(c.rcv_nxt, kIsn + 1 + request_bytes) << "the request counts as received";
  EXPECT_EQ(c.mss, 1460) << "the client's";
  EXPECT_TRUE(c.window_scale);
  EXPECT_EQ(c.snd_wscale, 7) << "the client's shift";
  EXPECT_EQ(c.rcv_wscale, our_wscale) << "ours, from the SYN/ACK";
  EXPECT_TRUE(c.sack);
  EXPECT_TRUE(c.timestamps);
  EXPECT_EQ(c.tsval, 20u) << "where the client last saw our clock";
  EXPECT_EQ(c.snd_wnd, 502u << 7) << "the client's latest window, scaled";
  EXPECT_EQ(c.rcv_wnd, 65160u);
  EXPECT_TRUE(answers[0].response.starts_with("HTTP/1.1 503 Service Unavailable\r\n"));
  const auto forgets = all_of<ForgetFlow>(a);
  ASSERT_EQ(forgets.size(), 1u);
  EXPECT_TRUE(forgets[0].to_local_stack) << "the restored socket is in the local stack";
}

TEST_F(FrontendTest, AnUnsentHandoffToTheOnlyHolderIsAnsweredUnavailable) {
  auto a = request_remote();
  auto key = the_message<proto::HandoffRequest>(a).flow;
  expect_answered_unavailable(fe.on_handoff_unsent(key, 2), 23);
  EXPECT_EQ(fe.counters().answered_unavailable, 1u);
  EXPECT_TRUE(fe.flows().empty());
}

TEST_F(FrontendTest, ARefusalByTheOnlyHolderIsAnsweredUnavailable) {
  auto a = request_remote();
  proto::HandoffAck no;
  no.flow = the_message<proto::HandoffRequest>(a).flow;
  no.refusal = proto::Refusal::kNoListener;
  expect_answered_unavailable(fe.on_handoff_ack(2, no, 2), 23);
  EXPECT_EQ(fe.counters().handoff_refused, 1u);
  EXPECT_EQ(fe.counters().served_locally, 0u);
}

TEST_F(FrontendTest, ARequestNoReachableNodeCanServeIsAnsweredUnavailable) {
  Frontend lonely(FrontendConfig{.self = 1}, map, {[](NodeId) { return false; }, [](NodeId) { return 0u; }},
                  addr);
  const test::Segment ack = handshake_on(lonely, 10);
  EXPECT_TRUE(lonely.on_client_packet(3, test::build(ack), 1).empty());
  const auto a = lonely.on_client_packet(4, data(ack, 0, "HEAD /two/x HTTP/1.1\r\n\r\n"), 1);
  expect_answered_unavailable(a, 24, 10);
  EXPECT_TRUE(all_of<SendMessage>(a).empty());
  const std::string r = all_of<AnswerHere>(a).at(0).response;
  EXPECT_TRUE(r.ends_with("\r\n\r\n")) << "HEAD: no body";
  EXPECT_NE(r.find("Connection: close\r\n"), std::string::npos);
}

TEST_F(FrontendTest, ARefusedHandoffGoesToAnotherHolderFirst) {
  map.add({"/both/", {2, 3}});
  auto ack = handshake();
  fe.on_client_packet(3, test::build(ack), 1);
  auto a = fe.on_client_packet(4, data(ack, 0, "GET /both/x HTTP/1.1\r\n\r\n"), 1);
  const auto first = the_message<proto::HandoffRequest>(a);
  proto::HandoffAck no;
  no.flow = first.flow;
  no.refusal = proto::Refusal::kNoListener;
  a = fe.on_handoff_ack(2, no, 2);
  EXPECT_TRUE(all_of<Verdict>(a).empty()) << "still held";
  ASSERT_EQ(messages<proto::HandoffRequest>(a).size(), 1u);
  const auto second = the_message<proto::HandoffRequest>(a);
  EXPECT_EQ(second.request, first.request);
  EXPECT_EQ(second.syn, first.syn);
  EXPECT_EQ(fe.flows().begin()->second.backend, 3u);
  EXPECT_EQ(fe.counters().handoff_retried, 1u);
  // Node 3 says no too: nobody is left, and this node does not hold it: 503.
  a = fe.on_handoff_ack(3, no, 3);
  expect_answered_unavailable(a, 24);
  EXPECT_EQ(fe.counters().handoff_refused, 2u);
  EXPECT_TRUE(fe.flows().empty());
}

TEST_F(FrontendTest, AHandoffThatNeverReachedALostPeerGoesElsewhere) {
  map.add({"/both/", {2, 3}});
  auto ack = handshake();
  fe.on_client_packet(3, test::build(ack), 1);
  auto a = fe.on_client_packet(4, data(ack, 0, "GET /both/x HTTP/1.1\r\n\r\n"), 1);
  const FlowKey key = the_message<proto::HandoffRequest>(a).flow;
  // The request never left this node for node 2: node 3 gets it, nobody is reset.
  a = fe.on_peer_down(2, 2, {key});
  EXPECT_EQ(the_message<proto::HandoffRequest>(a).flow, key);
  EXPECT_EQ(fe.flows().at(key).backend, 3u);
  EXPECT_TRUE(all_of<InjectLocal>(a).empty()) << "no reset";
  EXPECT_EQ(fe.counters().handoff_unreached, 1u);
  // Lost again, and this time node 3 may have had it: aborted, as ever.
  a = fe.on_peer_down(3, 3, {});
  EXPECT_FALSE(all_of<InjectLocal>(a).empty()) << "the client is reset";
  EXPECT_EQ(fe.counters().handoff_timeouts, 1u);
  EXPECT_TRUE(fe.flows().empty());
}

TEST_F(FrontendTest, AckFromTheWrongNodeIsIgnored) {
  auto a = request_remote();
  proto::HandoffAck yes;
  yes.flow = the_message<proto::HandoffRequest>(a).flow;
  EXPECT_TRUE(all_of<Verdict>(fe.on_handoff_ack(3, yes, 2)).empty());
  EXPECT_EQ(fe.flows().begin()->second.state, FeState::kHandoffPending);
}

TEST_F(FrontendTest, PacketsArrivingWhilePendingAreForwardedAfterTheAck) {
  PendingWithFin p = pending_with_fin(502);
  auto& a = p.request;
  // A retransmission of the request while pending is a duplicate.
  EXPECT_EQ(all_of<Verdict>(fe.on_client_packet(6, data(p.ack, 0, p.req), 2)), std::vector<Verdict>{drop(6)});
  proto::HandoffAck yes = accepted(a);
  yes.ts_base = 70;
  yes.backend_wscale = 7;
  auto v = all_of<Verdict>(fe.on_handoff_ack(2, yes, 3));
  ASSERT_EQ(v.size(), 3u);
  EXPECT_EQ(v[0], drop(3));
  EXPECT_EQ(v[1], drop(4));
  EXPECT_EQ(v[2].id, 5u);
  auto fwd = TcpPacket::parse(v[2].replacement);
  ASSERT_TRUE(fwd);
  EXPECT_TRUE(fwd->has(tcp_flag::kFin));
  EXPECT_EQ(fwd->daddr(), test::kNode2);
  EXPECT_EQ(fwd->ack(), 9001u);
  EXPECT_EQ(fwd->tsecr(), 70u);
  EXPECT_EQ(fwd->window(), 0u) << "the back end's window stays shut until the switch is done";
}

TEST_F(FrontendTest, TheSwitchEndsWithOneAckThatOpensTheBackEndsWindow) {
  PendingWithFin p = pending_with_fin(4321);
  const test::Segment& fin = p.fin;
  auto out = fe.on_handoff_ack(2, accepted(p.request), 3);
  auto inj = all_of<InjectLocal>(out);
  ASSERT_EQ(inj.size(), 2u) << "the window-opening ACK, then the reset of our own half-open connection";
  auto open = TcpPacket::parse(inj[0].packet);
  ASSERT_TRUE(open);
  EXPECT_EQ(open->flags(), tcp_flag::kAck);
  EXPECT_EQ(open->daddr(), test::kNode2);
  EXPECT_EQ(open->seq(), fin.seq + 1) << "after the FIN";
  EXPECT_EQ(open->ack(), 9001u);
  EXPECT_EQ(open->window(), 4321u);
  EXPECT_TRUE(open->tcp_checksum_ok());
  // Its place: after every verdict of the switch (they are given before the actions that inject).
  size_t last_verdict = 0, first_inject = out.size();
  for (size_t i = 0; i < out.size(); ++i) {
    if (std::holds_alternative<Verdict>(out[i])) last_verdict = i;
    if (std::holds_alternative<InjectLocal>(out[i]) && first_inject == out.size()) first_inject = i;
  }
  EXPECT_LT(last_verdict, first_inject);
}

TEST_F(FrontendTest, ALateCloseOfAnEarlierConnectionDoesNotEndAPendingHandoff) {
  auto a = request_remote();
  const FlowKey key = the_message<proto::HandoffRequest>(a).flow;
  // The close of the previous connection from this client port, delivered after the new one's request.
  EXPECT_TRUE(fe.on_flow_closed(2, proto::FlowClosed{key, proto::CloseReason::kFin}, 2).empty());
  EXPECT_EQ(fe.flows().at(key).state, FeState::kHandoffPending)
      << "not served here (a 404 for remote content)";
  auto v = all_of<Verdict>(fe.on_handoff_ack(2, accepted(a), 3));
  EXPECT_FALSE(v.empty());
  EXPECT_EQ(fe.flows().at(key).state, FeState::kForwarding);
}

TEST_F(FrontendTest, UnknownFlowsAndStrayPacketsPassUntouched) {
  test::Segment s;
  s.seq = 1;
  EXPECT_EQ(all_of<Verdict>(fe.on_client_packet(1, test::build(s), 0)), std::vector<Verdict>{accept(1)});
  Bytes junk{1, 2, 3};
  EXPECT_EQ(all_of<Verdict>(fe.on_client_packet(2, junk, 0)), std::vector<Verdict>{accept(2)});
  EXPECT_TRUE(fe.flows().empty());
}

TEST_F(FrontendTest, WithoutOurSynAckWeStayOut) {
  fe.on_client_packet(1, test::build(test::client_syn(kIsn, 10)), 0);
  test::Segment ack;
  ack.seq = kIsn + 1;
  ack.ack = kIsn1 + 1;
  EXPECT_EQ(all_of<Verdict>(fe.on_client_packet(2, test::build(ack), 0)), std::vector<Verdict>{accept(2)});
  EXPECT_TRUE(fe.flows().empty());
}

TEST_F(FrontendTest, RetransmittedSynPassesAndHandshakeTimesOut) {
  fe.on_client_packet(1, test::build(test::client_syn(kIsn, 10)), 0);
  EXPECT_EQ(all_of<Verdict>(fe.on_client_packet(2, test::build(test::client_syn(kIsn, 10)), 1)),
            std::vector<Verdict>{accept(2)});
  EXPECT_EQ(fe.flows().size(), 1u);
  fe.on_tick(60'000);
  EXPECT_TRUE(fe.flows().empty());
}

TEST_F(FrontendTest, HalfCloseAfterACompleteRequestIsStillHandedOff) {
  auto ack = handshake();
  fe.on_client_packet(3, test::build(ack), 1);
  test::Segment fin = ack;
  fin.flags |= tcp_flag::kFin;
  fin.payload = test::as_bytes("GET /two/x HTTP/1.0\r\n\r\n");
  auto a = fe.on_client_packet(4, test::build(fin), 1);
  ASSERT_EQ(messages<proto::HandoffRequest>(a).size(), 1u);
  EXPECT_TRUE(all_of<Verdict>(a).empty()) << "held until the handoff ack";
  auto v = all_of<Verdict>(fe.on_handoff_ack(2, accepted(a), 2));
  ASSERT_EQ(v.size(), 2u);
  EXPECT_EQ(v[0], drop(3));
  EXPECT_EQ(v[1].id, 4u) << "the FIN (with the request) is forwarded: the back end must see the close";
  EXPECT_EQ(v[1].kind, Verdict::kAccept);
}

TEST_F(FrontendTest, ClientFinBeforeCompleteRequestIsServedLocally) {
  auto ack = handshake();
  fe.on_client_packet(3, test::build(ack), 1);
  test::Segment fin = ack;
  fin.flags |= tcp_flag::kFin;
  fin.payload = test::as_bytes("GET /two");
  EXPECT_EQ(all_of<Verdict>(fe.on_client_packet(4, test::build(fin), 1)),
            (std::vector<Verdict>{accept(3), accept(4)}));
}

}  // namespace
}  // namespace baton

namespace baton {
namespace {

// The datapath programming a kernel datapath relies on: watched from the SYN, offloaded with the
// translation once handed off, forgotten when the state goes.
TEST_F(FrontendTest, ProgramsTheDatapathThroughTheFlowsLife) {
  auto a = fe.on_client_packet(1, test::build(test::client_syn(kIsn, 10)), 0);
  ASSERT_FALSE(a.empty());
  ASSERT_TRUE(std::holds_alternative<WatchFlow>(a[0])) << "watched before the SYN's verdict";
  FlowKey key = std::get<WatchFlow>(a[0]).key;
  EXPECT_EQ(key.saddr, test::kClient);
  // Facts reported by a kernel datapath count like a SYN/ACK packet.
  SynAckFacts facts{kIsn1, kIsn + 1, 20, 7, 1460, true};
  fe.on_synack_seen(key, facts, 0);
  EXPECT_EQ(fe.flows().at(key).state, FeState::kSynAckSeen);
  EXPECT_EQ(fe.flows().at(key).isn1, kIsn1);
  test::Segment ack;
  ack.seq = kIsn + 1;
  ack.ack = kIsn1 + 1;
  ack.timestamps = {{11, 20}};
  fe.on_client_packet(3, test::build(ack), 1);
  ack.payload = test::as_bytes("GET /two/x HTTP/1.1\r\n\r\n");
  a = fe.on_client_packet(4, test::build(ack), 1);
  proto::HandoffAck yes;
  yes.flow = key;
  yes.isn2 = 777;
  a = fe.on_handoff_ack(2, yes, 2);
  auto off = all_of<OffloadFlow>(a);
  ASSERT_EQ(off.size(), 1u);
  EXPECT_EQ(off[0].key, key);
  EXPECT_EQ(off[0].xlate.isn2, 777u);
  EXPECT_EQ(off[0].xlate.backend_addr, test::kNode2);
  // Offloaded flows are not idle while the datapath sees their packets.
  fe.touch(key, 500'000);
  fe.on_tick(700'000);
  EXPECT_EQ(fe.flows().size(), 1u);
  EXPECT_TRUE(all_of<ForgetFlow>(fe.on_tick(500'000 + 600'001)).empty())
      << "the back end, which sees both directions, decides idleness";
  auto gone = all_of<ForgetFlow>(fe.on_tick(500'000 + 610'001));
  ASSERT_EQ(gone.size(), 1u);
  EXPECT_EQ(gone[0].key, key);
}

TEST_F(FrontendTest, AConnectionTheDatapathHadNoRoomForIsLeftToTheLocalStack) {
  auto a = fe.on_client_packet(1, test::build(test::client_syn(kIsn, 10)), 0);
  ASSERT_FALSE(a.empty());
  ASSERT_TRUE(std::holds_alternative<WatchFlow>(a[0]));
  const FlowKey key = std::get<WatchFlow>(a[0]).key;
  fe.on_untracked(key);
  EXPECT_TRUE(fe.flows().empty());
  EXPECT_EQ(fe.counters().table_full, 1u);
  // Its next packets are the stack's business: nothing of the flow is held here.
  test::Segment ack;
  ack.seq = kIsn + 1;
  ack.ack = kIsn1 + 1;
  EXPECT_EQ(test::the_only(all_of<Verdict>(fe.on_client_packet(3, test::build(ack), 1))).kind,
            Verdict::kAccept);
}

TEST_F(FrontendTest, AFlowThatIsOverIsForgottenWhenTheKernelSupersedesIt) {
  auto a = fe.on_client_packet(1, test::build(test::client_syn(kIsn, 10)), 0);
  const FlowKey key = std::get<WatchFlow>(a.at(0)).key;
  fe.on_synack_seen(key, SynAckFacts{kIsn1, kIsn + 1, 20, 7, 1460, true}, 0);
  test::Segment req;
  req.seq = kIsn + 1;
  req.ack = kIsn1 + 1;
  req.timestamps = {{11, 20}};
  req.payload = test::as_bytes("GET /two/x HTTP/1.1\r\n\r\n");
  fe.on_client_packet(2, test::build(req), 1);
  proto::HandoffAck yes;
  yes.flow = key;
  yes.isn2 = 777;
  fe.on_handoff_ack(2, yes, 2);
  fe.on_superseded(key);
  ASSERT_EQ(fe.flows().count(key), 1u) << "a live flow is not the kernel's to end";
  EXPECT_EQ(all_of<EndFlow>(fe.on_flow_closed(2, proto::FlowClosed{key, proto::CloseReason::kFin}, 3)).size(),
            1u);
  ASSERT_EQ(fe.flows().count(key), 1u) << "lingers";
  fe.on_superseded(key);
  EXPECT_EQ(fe.flows().count(key), 0u);
  EXPECT_TRUE(fe.on_tick(1'000'000).empty()) << "nothing left to forget later";
}

}  // namespace
}  // namespace baton

namespace baton {
namespace {

// A request larger than the client's initial window: we acknowledge held bytes ourselves, in our own
// sequence and timestamp space, so that the client keeps sending until the header block is complete.
TEST_F(FrontendTest, LargeRequestsAreAcknowledgedWhileHeld) {
  auto ack = handshake();
  fe.on_client_packet(3, test::build(ack), 1);
  std::string req = "GET /two/x HTTP/1.1\r\nCookie: " + std::string(12000, 'c') + "\r\n\r\n";
  Actions last;
  uint32_t off = 0;
  PacketId id = 4;
  while (off < req.size()) {
    size_t n = std::min<size_t>(1448, req.size() - off);
    test::Segment s = ack;
    s.seq += off;
    s.timestamps = {{100 + off, 20}};
    s.payload = test::as_bytes(req.substr(off, n));
    last = fe.on_client_packet(id++, test::build(s), 1);
    off += static_cast<uint32_t>(n);
    if (off < req.size() && off >= 4096) {
      auto sent = all_of<InjectLocal>(last);
      ASSERT_EQ(sent.size(), 1u) << "no ACK of held data at " << off;
      auto p = TcpPacket::parse(sent[0].packet);
      ASSERT_TRUE(p);
      EXPECT_EQ(p->saddr(), test::kNode1);
      EXPECT_EQ(p->daddr(), test::kClient);
      EXPECT_EQ(p->seq(), kIsn1 + 1);
      EXPECT_EQ(p->ack(), kIsn + 1 + off);
      EXPECT_EQ(p->tsval(), 20u) << "our SYN/ACK's clock";
      EXPECT_EQ(p->tsecr(), 100 + off - n);
      EXPECT_EQ(p->window(), 65160 >> 7);
      EXPECT_TRUE(p->tcp_checksum_ok());
    }
  }
  auto reqs = messages<proto::HandoffRequest>(last);
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].request, test::as_bytes(req));
}

TEST_F(FrontendTest, OurSynAckRetransmissionsStopOnceTheClientAcked) {
  auto ack = handshake();
  fe.on_client_packet(3, test::build(ack), 1);
  Bytes synack = test::build(test::server_synack(test::kNode1, kIsn1, kIsn, 1020, 10, 7));
  EXPECT_EQ(all_of<Verdict>(fe.on_local_synack(9, synack, 1000)), std::vector<Verdict>{drop(9)});
}

TEST_F(FrontendTest, AConnectionTheKernelServedHereIsWatchedFromItsNextRequest) {
  const Bytes syn = test::build(test::client_syn(kIsn, 10));
  const FlowKey key = triaged_key(syn);
  auto a = fe.on_triaged(key, syn, our_synack(), 0, /*served_here=*/true);
  ASSERT_EQ(all_of<AdoptLocalSocket>(a).size(), 1u);
  EXPECT_EQ(all_of<AdoptLocalSocket>(a)[0].xlate.isn2, kIsn1);
  test::Segment next;
  next.seq = kIsn + 1 + 30;  // after the first request, which the stack has
  next.ack = kIsn1 + 1 + 500;
  a = fe.on_client_packet(5, data(next, 0, "GET /two/x HTTP/1.1\r\n\r\n"), 1, /*starts_request=*/true);
  EXPECT_TRUE(all_of<Verdict>(a).empty()) << "held";
  EXPECT_EQ(all_of<SendMessage>(a).at(0).to, 1u);
  EXPECT_FALSE(the_message<proto::Quiesce>(a).resume);
}

TEST_F(FrontendTest, SmallRequestsNeedNoAckFromUs) {
  auto ack = handshake();
  fe.on_client_packet(3, test::build(ack), 1);
  ack.payload = test::as_bytes("GET /two/x HTTP/1.1\r\nHost: a\r\n");
  EXPECT_TRUE(all_of<InjectLocal>(fe.on_client_packet(4, test::build(ack), 1)).empty());
}

}  // namespace
}  // namespace baton

namespace baton {
namespace {

TEST_F(FrontendTest, FlowsOfABackEndThatLostThemAreForgottenAndTheClientNudged) {
  auto a = request_remote();
  fe.on_handoff_ack(2, accepted(a), 2);
  EXPECT_TRUE(fe.on_peer_lost_flows(3, 3).empty()) << "flows of other back ends are not concerned";
  a = fe.on_peer_lost_flows(2, 3);
  ASSERT_EQ(all_of<ForgetFlow>(a).size(), 1u) << "the client's packets must reach our stack again";
  auto inj = all_of<InjectLocal>(a);
  ASSERT_EQ(inj.size(), 1u);
  Bytes nudge = inj[0].packet;
  auto p = TcpPacket::parse(nudge);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->flags(), tcp_flag::kAck);
  EXPECT_EQ(p->saddr(), test::kNode1);
  EXPECT_EQ(p->daddr(), test::kClient);
  EXPECT_EQ(p->seq(), kIsn1) << "a sequence number the client already has: it answers where it stands";
  EXPECT_TRUE(p->tcp_checksum_ok());
  EXPECT_TRUE(fe.flows().empty());
  EXPECT_EQ(fe.counters().flows_lost, 1u);
}

// Multiple handoff: the second request of a keep-alive connection belongs to another node.
class FrontendMoveTest : public FrontendTest {
 protected:
  FrontendMoveTest() {
    map.add({"/three/", {3}});
    map.add({"/both/", {3, 2}});  // node 3 first: dispatch alone would pick it
  }
  // request_remote, accepted by node 2 (ISN2 9000): the flow forwards; returns the client's ACK segment.
  test::Segment forwarding() {
    auto ack = handshake();
    fe.on_client_packet(3, test::build(ack), 1);
    auto a = fe.on_client_packet(4, data(ack, 0, first_), 1);
    fe.on_handoff_ack(2, accepted(a), 2);
    EXPECT_EQ(fe.flows().begin()->second.state, FeState::kForwarding);
    return ack;
  }
  // The client's next request, at the boundary, acknowledging `acked` bytes of the first response.
  // `after`: bytes of requests since the first.
  Bytes next_request(test::Segment s, const std::string& text, uint32_t acked, uint32_t after = 0) {
    s.seq = kIsn + 1 + static_cast<uint32_t>(first_.size()) + after;
    s.ack = kIsn1 + 1 + acked;
    s.timestamps = {{30, 444}};
    s.flags |= tcp_flag::kPsh;
    s.payload = test::as_bytes(text);
    return test::build(s);
  }
  const std::string first_ = "GET /two/x HTTP/1.1\r\n\r\n";
};

TEST_F(FrontendMoveTest, ARequestForTheSameNodeGoesOnAtOnce) {
  auto ack = forwarding();
  const uint32_t boundary = kIsn + 1 + static_cast<uint32_t>(first_.size());
  uint32_t after = 0;
  for (const std::string path : {"/two/y", "/both/y"}) {
    const std::string req = "GET " + path + " HTTP/1.1\r\n\r\n";
    auto a = fe.on_client_packet(10, next_request(ack, req, 500, after), 3);
    ASSERT_EQ(all_of<Verdict>(a).size(), 1u) << path;
    EXPECT_EQ(all_of<Verdict>(a)[0].kind, Verdict::kAccept);
    EXPECT_TRUE(messages<proto::Quiesce>(a).empty()) << path << ": a node holding the content keeps it";
    EXPECT_EQ(fe.flows().begin()->second.state, FeState::kForwarding);
    // A kernel datapath takes the flow back, watching from the next request, once the verdict is given:
    // where to watch comes first.
    auto off = std::find_if(a.begin(), a.end(),
                            [](const Action& x) { return std::holds_alternative<OffloadFlow>(x); });
    auto verdict =
        std::find_if(a.begin(), a.end(), [](const Action& x) { return std::holds_alternative<Verdict>(x); });
    ASSERT_LT(off, verdict);
    const RequestWatch w = std::get<OffloadFlow>(*off).watch;
    after += static_cast<uint32_t>(req.size());
    EXPECT_EQ(w, (RequestWatch{true, boundary + after, 2}));
  }
  EXPECT_EQ(fe.counters().requests_decided, 2u);
}

TEST_F(FrontendMoveTest, TheFirstHandoffTellsTheDatapathWhereTheNextRequestStarts) {
  auto ack = handshake();
  fe.on_client_packet(3, test::build(ack), 1);
  auto a = fe.on_client_packet(4, data(ack, 0, first_), 1);
  a = fe.on_handoff_ack(2, accepted(a), 2);
  auto off = all_of<OffloadFlow>(a);
  ASSERT_EQ(off.size(), 1u);
  EXPECT_EQ(off[0].watch, (RequestWatch{true, kIsn + 1 + static_cast<uint32_t>(first_.size()), 2}));
}

TEST_F(FrontendMoveTest, ABoundaryTheKernelStoppedAtIsDecidedThere) {
  // tc sent two requests for node 2 on itself (batond never saw them) and stopped at the third.
  auto ack = forwarding();
  const uint32_t seen_by_kernel = 2 * 24;
  const Bytes third = next_request(ack, "GET /three/z HTTP/1.1\r\n\r\n", 900, seen_by_kernel);
  Actions a = fe.on_client_packet(10, third, 3);
  EXPECT_EQ(all_of<Verdict>(a).size(), 1u) << "not where batond thinks a request starts: forwarded";
  a = fe.on_client_packet(11, third, 3, /*starts_request=*/true);
  EXPECT_TRUE(all_of<Verdict>(a).empty()) << "held";
  EXPECT_EQ(the_message<proto::Quiesce>(a).resume, false);
  EXPECT_EQ(fe.flows().begin()->second.request.base(), kIsn + 1 + first_.size() + seen_by_kernel);
}

TEST_F(FrontendMoveTest, ARequestForAnotherNodeMovesTheConnectionWhereTheClientIs) {
  auto ack = forwarding();
  const std::string second = "GET /three/z HTTP/1.1\r\nHost: h\r\n\r\n";
  const uint32_t boundary = kIsn + 1 + static_cast<uint32_t>(first_.size());
  auto a = fe.on_client_packet(10, next_request(ack, second, 500), 3);
  EXPECT_TRUE(all_of<Verdict>(a).empty()) << "the request is held";
  EXPECT_EQ(the_message<proto::Quiesce>(a).resume, false);
  // Its acknowledgement of the response goes on to node 2 (translated, without the request).
  auto inj = all_of<InjectLocal>(a);
  ASSERT_EQ(inj.size(), 1u);
  Bytes inj_bytes = inj[0].packet;
  auto acked = TcpPacket::parse(inj_bytes);
  ASSERT_TRUE(acked);
  EXPECT_EQ(acked->payload_size(), 0u);
  EXPECT_EQ(acked->daddr(), test::kNode2);
  EXPECT_EQ(acked->ack(), 9000u + 1 + 500);
  // Node 2 stopped: everything acknowledged, the client at the boundary.
  a = fe.on_quiesced(2, proto::Quiesced{fe.flows().begin()->first, true, kIsn1 + 1 + 500, boundary}, 4);
  auto req = the_message<proto::HandoffRequest>(a);
  EXPECT_EQ(req.isn1, kIsn1 + 500);
  EXPECT_EQ(req.request, test::as_bytes(second));
  Bytes syn = req.syn, rack = req.ack;
  auto s = TcpPacket::parse(syn);
  auto k = TcpPacket::parse(rack);
  ASSERT_TRUE(s && k);
  EXPECT_TRUE(s->has(tcp_flag::kSyn));
  EXPECT_EQ(s->seq(), boundary - 1);
  EXPECT_TRUE(s->tcp_checksum_ok());
  EXPECT_EQ(k->seq(), boundary);
  EXPECT_EQ(k->ack(), kIsn1 + 1 + 500);
  EXPECT_EQ(k->tsecr(), 444u + 1000) << "a little ahead of the newest echo: never behind the client";
  EXPECT_TRUE(k->tcp_checksum_ok());
  // Node 3 accepted: node 2 lets go silently, the translation points at node 3, continuing the client's
  // sequence space.
  proto::HandoffAck yes = accepted(a, 7000);
  yes.ts_base = 40;
  a = fe.on_handoff_ack(3, yes, 5);
  const auto closed = messages<proto::FlowClosed>(a);
  ASSERT_EQ(closed.size(), 1u);
  EXPECT_EQ(closed[0].reason, proto::CloseReason::kMigrated);
  auto off = all_of<OffloadFlow>(a);
  ASSERT_EQ(off.size(), 1u);
  EXPECT_EQ(off[0].xlate.backend_addr, test::kNode1) << "addr() maps node 3 to node 1's address here";
  EXPECT_EQ(off[0].xlate.isn1, kIsn1 + 500);
  EXPECT_EQ(off[0].xlate.isn2, 7000u);
  EXPECT_EQ(off[0].xlate.ts_offset, 444u + 1000 - 40u);
  const FeFlow& f = fe.flows().begin()->second;
  EXPECT_EQ(f.backend, 3u);
  EXPECT_EQ(f.moves, 1u);
  EXPECT_EQ(f.state, FeState::kForwarding);
  EXPECT_EQ(f.next_request, boundary + static_cast<uint32_t>(second.size()));
  EXPECT_EQ(fe.counters().migrations, 1u);
  // No reset into our own stack this time: nothing of the connection is left here.
  for (const auto& i : all_of<InjectLocal>(a)) {
    Bytes b = i.packet;
    EXPECT_FALSE(TcpPacket::parse(b)->has(tcp_flag::kRst));
  }
}

TEST_F(FrontendMoveTest, ARequestForThisNodesContentMovesTheConnectionBackToItsOwnStack) {
  // The front end is a back end like any other: the move goes to its own node (the engine passes the
  // messages to its own back end, which replays the connection into this node's stack).
  auto ack = forwarding();
  const std::string second = "GET /mine HTTP/1.1\r\n\r\n";  // the default: node 1
  const uint32_t boundary = kIsn + 1 + static_cast<uint32_t>(first_.size());
  auto a = fe.on_client_packet(10, next_request(ack, second, 500), 3);
  EXPECT_TRUE(all_of<Verdict>(a).empty()) << "held";
  EXPECT_EQ(the_message<proto::Quiesce>(a).resume, false);
  a = fe.on_quiesced(2, proto::Quiesced{fe.flows().begin()->first, true, kIsn1 + 1 + 500, boundary}, 4);
  const auto sent = all_of<SendMessage>(a);
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].to, 1u) << "to this node";
  EXPECT_EQ(the_message<proto::HandoffRequest>(a).request, test::as_bytes(second));
  a = fe.on_handoff_ack(1, accepted(a, 7000), 5);
  EXPECT_EQ(messages<proto::FlowClosed>(a).at(0).reason, proto::CloseReason::kMigrated);
  auto off = all_of<OffloadFlow>(a);
  ASSERT_EQ(off.size(), 1u);
  EXPECT_EQ(off[0].xlate.backend_addr, test::kNode1) << "the datapath delivers to this node's stack";
  EXPECT_EQ(off[0].watch, (RequestWatch{true, boundary + static_cast<uint32_t>(second.size()), 1}));
  EXPECT_EQ(fe.flows().begin()->second.backend, 1u);
  // And away again: node 2's content quiesces this node's own back end first.
  a = fe.on_client_packet(11, next_request(ack, first_, 900, static_cast<uint32_t>(second.size())), 6);
  ASSERT_EQ(all_of<SendMessage>(a).size(), 1u);
  EXPECT_EQ(all_of<SendMessage>(a)[0].to, 1u);
  EXPECT_EQ(the_message<proto::Quiesce>(a).resume, false);
}

TEST_F(FrontendMoveTest, TheNewBackEndsClockStartsFromTheNewestEchoNotTheHeldRequests) {
  // The old back end retransmitted after the request left the client (the client's ACK was lost): the
  // client now holds a newer TSval of it than the request echoes, and would drop anything older (PAWS).
  auto ack = forwarding();
  const uint32_t boundary = kIsn + 1 + static_cast<uint32_t>(first_.size());
  fe.on_client_packet(10, next_request(ack, "GET /three/z HTTP/1.1\r\n\r\n", 500), 3);
  test::Segment dup = ack;
  dup.seq = boundary + 25;
  dup.ack = kIsn1 + 1 + 500;
  dup.timestamps = {{31, 650}};  // the echo of the old back end's retransmission
  EXPECT_EQ(all_of<Verdict>(fe.on_client_packet(11, test::build(dup), 4)).size(), 1u) << "passed on";
  auto a = fe.on_quiesced(2, proto::Quiesced{fe.flows().begin()->first, true, kIsn1 + 1 + 500, boundary}, 5);
  Bytes rack = the_message<proto::HandoffRequest>(a).ack;
  EXPECT_EQ(TcpPacket::parse(rack)->tsecr(), 650u + 1000);
}

TEST_F(FrontendMoveTest, AMoveThatCannotHappenLeavesTheRequestWithTheOldNode) {
  auto ack = forwarding();
  const uint32_t boundary = kIsn + 1 + static_cast<uint32_t>(first_.size());
  fe.on_client_packet(10, next_request(ack, "GET /three/z HTTP/1.1\r\n\r\n", 500), 3);
  // Node 2 could not stop (bytes unacknowledged for too long): it answers this request too.
  auto a = fe.on_quiesced(2, proto::Quiesced{fe.flows().begin()->first, false, 0, 0}, 4);
  ASSERT_EQ(all_of<Verdict>(a).size(), 1u);
  EXPECT_EQ(all_of<Verdict>(a)[0].kind, Verdict::kAccept);
  EXPECT_EQ(fe.counters().migrations_refused, 1u);
  // The next one is watched again; this time node 3 refuses the move: node 2 is told to serve on.
  fe.on_client_packet(11, next_request(ack, "GET /three/w HTTP/1.1\r\n\r\n", 900, 25), 5);
  (void)fe.on_quiesced(2, proto::Quiesced{fe.flows().begin()->first, true, kIsn1 + 1 + 900, boundary + 25},
                       6);
  ASSERT_EQ(fe.flows().begin()->second.state, FeState::kHandoffPending);
  proto::HandoffAck no;
  no.flow = fe.flows().begin()->first;
  no.refusal = proto::Refusal::kNoListener;
  a = fe.on_handoff_ack(3, no, 7);
  EXPECT_TRUE(the_message<proto::Quiesce>(a).resume);
  EXPECT_EQ(all_of<Verdict>(a).size(), 1u);
  const FeFlow& f = fe.flows().begin()->second;
  EXPECT_EQ(f.backend, 2u);
  EXPECT_EQ(f.state, FeState::kForwarding);
  EXPECT_EQ(f.xlate.isn1, kIsn1) << "the old translation again";
}

TEST_F(FrontendMoveTest, PipelinedRequestsEachReachTheirNodeInTurn) {
  // One segment, three requests: node 2's, node 3's, node 2's. Each node gets its request alone, after
  // the previous node's answer was acknowledged in full; the segment itself waits until nothing of it
  // is left undecided.
  const std::string r1 = "GET /two/a HTTP/1.1\r\n\r\n", r2 = "GET /three/b HTTP/1.1\r\n\r\n",
                    r3 = "GET /two/c HTTP/1.1\r\n\r\n";
  const uint32_t b1 = kIsn + 1, b2 = b1 + static_cast<uint32_t>(r1.size()),
                 b3 = b2 + static_cast<uint32_t>(r2.size()), b4 = b3 + static_cast<uint32_t>(r3.size());
  auto ack = handshake();
  fe.on_client_packet(3, test::build(ack), 1);
  auto a = fe.on_client_packet(4, data(ack, 0, r1 + r2 + r3), 1);
  EXPECT_EQ(messages<proto::HandoffRequest>(a).at(0).request, test::as_bytes(r1));
  a = fe.on_handoff_ack(2, accepted(a), 2);
  for (const Verdict& v : all_of<Verdict>(a))
    EXPECT_NE(v.id, 4u) << "the segment waits";
  bool window_opened = false;
  for (const auto& i : all_of<InjectLocal>(a)) {
    Bytes b = i.packet;
    auto p = TcpPacket::parse(b);
    if (p->daddr() == test::kNode2 && p->payload_size() == 0 && !p->has(tcp_flag::kRst)) {
      EXPECT_EQ(p->seq(), b2) << "acknowledging the first request only";
      window_opened = true;
    }
  }
  EXPECT_TRUE(window_opened) << "node 2 may answer the first request";
  EXPECT_EQ(the_message<proto::Quiesce>(a).resume, false) << "the second is node 3's";
  const FlowKey key = fe.flows().begin()->first;
  a = fe.on_quiesced(2, proto::Quiesced{key, true, kIsn1 + 1 + 300, b2}, 3);
  auto req = the_message<proto::HandoffRequest>(a);
  EXPECT_EQ(req.request, test::as_bytes(r2));
  Bytes syn = req.syn;
  EXPECT_EQ(TcpPacket::parse(syn)->seq(), b2 - 1);
  a = fe.on_handoff_ack(3, accepted(a, 7000), 4);
  EXPECT_EQ(messages<proto::FlowClosed>(a).at(0).reason, proto::CloseReason::kMigrated);
  EXPECT_TRUE(all_of<Verdict>(a).empty());
  EXPECT_EQ(the_message<proto::Quiesce>(a).resume, false) << "the third is node 2's again";
  a = fe.on_quiesced(3, proto::Quiesced{key, true, kIsn1 + 1 + 600, b3}, 5);
  EXPECT_EQ(the_message<proto::HandoffRequest>(a).request, test::as_bytes(r3));
  a = fe.on_handoff_ack(2, accepted(a, 11000), 6);
  ASSERT_EQ(all_of<Verdict>(a).size(), 1u);
  EXPECT_EQ(all_of<Verdict>(a)[0], drop(4)) << "everything in it was delivered";
  const FeFlow& f = fe.flows().begin()->second;
  EXPECT_EQ(f.state, FeState::kForwarding);
  EXPECT_EQ(f.next_request, b4);
  EXPECT_EQ(f.moves, 2u);
}

TEST_F(FrontendMoveTest, PipelinedRequestsForTheSameNodeGoOnOneByOne) {
  auto ack = forwarding();
  const std::string r2 = "GET /two/b HTTP/1.1\r\n\r\n", r3 = "GET /three/c HTTP/1.1\r\n\r\n";
  const uint32_t b2 = kIsn + 1 + static_cast<uint32_t>(first_.size());
  auto a = fe.on_client_packet(10, next_request(ack, r2 + r3, 500), 3);
  // The second goes on to node 2 as a copy of its own bytes; the third waits for node 2 to finish.
  EXPECT_TRUE(all_of<Verdict>(a).empty());
  bool delivered = false;
  for (const auto& i : all_of<InjectLocal>(a)) {
    Bytes b = i.packet;
    auto p = TcpPacket::parse(b);
    if (p->payload_size() > 0) {
      EXPECT_EQ(p->seq(), b2);
      EXPECT_EQ(Bytes(p->payload().begin(), p->payload().end()), test::as_bytes(r2));
      EXPECT_EQ(p->daddr(), test::kNode2);
      EXPECT_TRUE(p->tcp_checksum_ok());
      delivered = true;
    }
  }
  EXPECT_TRUE(delivered);
  EXPECT_FALSE(the_message<proto::Quiesce>(a).resume);
  EXPECT_EQ(fe.flows().begin()->second.next_request, b2 + static_cast<uint32_t>(r2.size()));
  EXPECT_EQ(fe.counters().requests_decided, 2u);
}

}  // namespace
}  // namespace baton
