// The tc programs run on packet vectors through BPF_PROG_TEST_RUN, with seeded maps. Every rewrite is
// checked byte for byte against the core/ reference rewrite (the differential test), so the two
// datapaths cannot drift apart; the verifier proves memory safety, these tests prove the bytes.
#include "tests/bpf/bpf_fixture.hpp"

namespace baton {
namespace {

using namespace bpftest;  // NOLINT(google-build-using-namespace): the fixture's vocabulary
using test::Segment;

// A front end's translation (node 1 hands off to node 2), with values that wrap around 2^32.
Translation wrapping_translation() {
  Translation t;
  t.frontend_addr = kService;
  t.backend_addr = kOtherNode;
  t.isn1 = 0xfffffff0;
  t.isn2 = 0x00000100;
  t.ts_offset = 0x80000001;
  t.timestamps = true;
  t.frontend_wscale = 7;
  t.backend_wscale = 9;
  return t;
}

// The client -> front end segments the tests send: each option layout a real stack produces, and some.
std::vector<std::pair<std::string, Segment>> client_segments() {
  std::vector<std::pair<std::string, Segment>> v;
  Segment base;
  base.seq = 0xfffffffe;  // the client's own sequence numbers wrap too (and are never changed)
  base.ack = 0x00000010;
  v.push_back({"bare ACK, no options", base});
  Segment ts = base;
  ts.timestamps = {{12345, 0x80000005}};
  v.push_back({"ACK with timestamps", ts});
  for (int n = 1; n <= 4; ++n) {
    Segment s = base;
    if (n < 4) s.timestamps = {{12345, 0x80000005}};
    for (int i = 0; i < n; ++i)
      s.sack.push_back(
          {0xfffffff8u + 16u * static_cast<uint32_t>(i), 0x00000004u + 16u * static_cast<uint32_t>(i)});
    v.push_back({"SACK with " + std::to_string(n) + " block(s)", s});
  }
  Segment odd = ts;
  odd.misalign = true;
  odd.sack = {{1, 2}};
  v.push_back({"options at odd offsets", odd});
  Segment data = ts;
  data.flags |= tcp_flag::kPsh;
  data.payload = test::as_bytes("POST body bytes, odd length!");
  v.push_back({"data segment", data});
  Segment fin = ts;
  fin.flags |= tcp_flag::kFin;
  v.push_back({"FIN", fin});
  Segment rst = base;
  rst.flags = tcp_flag::kRst;
  v.push_back({"RST without ACK", rst});
  return v;
}

TEST_F(BpfProgTest, FrontEndForwardingMatchesTheCoreRewrite) {
  const Translation t = wrapping_translation();
  for (const auto& [name, seg] : client_segments()) {
    Bytes ip = test::build(seg);
    auto parsed = TcpPacket::parse(ip);
    seed_frontend(parsed->key(), BATON_GATE_OPEN, t);
    RunResult r = ingress(ip);
    EXPECT_EQ(r.retval, TC_ACT_REDIRECT) << name;
    Bytes expected = ip;
    auto ref = TcpPacket::parse(expected);
    rewrite_client_to_backend(t, *ref);
    EXPECT_EQ(r.out, with_eth(expected)) << name << ": BPF and core/ differ";
    Bytes got(r.out.begin() + 14, r.out.end());
    auto out = TcpPacket::parse(got);
    ASSERT_TRUE(out) << name;
    EXPECT_TRUE(out->ip_checksum_ok()) << name;
    EXPECT_TRUE(out->tcp_checksum_ok()) << name;
    EXPECT_EQ(out->daddr(), kOtherNode) << name;
  }
}

TEST_F(BpfProgTest, AFlowThatMovedBackToThisNodeIsTranslatedIntoItsOwnStack) {
  // The front end is the flow's back end too: the client's packets are translated as for any back end
  // and given to the stack here, and the flow's back-end half tracks them.
  Translation t = wrapping_translation();
  t.backend_addr = kService;
  Segment seg = client_segments()[0].second;
  seg.flags = tcp_flag::kAck | tcp_flag::kFin;
  Bytes ip = test::build(seg);
  const FlowKey k = TcpPacket::parse(ip)->key();
  seed_frontend(k, BATON_GATE_OPEN, t);
  seed_backend(k, BATON_BE_ESTABLISHED, t);
  const uint64_t before = counter(BATON_CNT_FE_OWN_STACK);
  RunResult r = ingress(ip);
  EXPECT_EQ(r.retval, TC_ACT_OK) << "to the stack, not redirected";
  Bytes expected = ip;
  auto ref = TcpPacket::parse(expected);
  rewrite_client_to_backend(t, *ref);
  EXPECT_EQ(r.out, with_eth(expected)) << "BPF and core/ differ";
  EXPECT_EQ(counter(BATON_CNT_FE_OWN_STACK), before + 1);
  const baton_be_flow be = backend_entry(k);
  EXPECT_EQ(be.packets, 1u);
  EXPECT_TRUE(be.close_flags & BATON_CLOSE_CLIENT_FIN);
  // A new connection from the same port (the old one lingers here): its SYN/ACK is the front end's to
  // report, not the old flow's to rewrite, and its SYN clears the old back-end half.
  Segment sa = test::server_synack(kService, 0x1234, 0x777, 99, 5, 7);
  sa.dport = seg.sport;
  sa.daddr = seg.saddr;
  const Bytes sa_ip = test::build(sa);
  seed_frontend(k, 0);  // batond watches the new connection
  r = egress(sa_ip);
  EXPECT_EQ(r.retval, TC_ACT_OK);
  EXPECT_EQ(r.out, with_eth(sa_ip)) << "not rewritten by the old flow's translation";
  EXPECT_EQ(events().size(), 1u) << "reported to batond as the front end's";
  baton_flow_key key = to_abi(k);
  ASSERT_EQ(bpf_map_delete_elem(progs_->fe_flows_fd(), &key), 0);  // the front end forgot it first
  Segment syn = test::client_syn(0x777, 5);
  syn.sport = seg.sport;
  ingress(test::build(syn));
  baton_be_flow gone{};
  EXPECT_NE(bpf_map_lookup_elem(progs_->be_flows_fd(), &key, &gone), 0) << "the old back-end half is gone";
  // The same for a flow another front end handed here, once it ended (it lingers): a client that reuses
  // the port at once, straight to this node, owes it nothing. A live one is left alone (a collision).
  Translation remote = wrapping_translation();
  remote.frontend_addr = kOtherNode;
  remote.backend_addr = kService;
  seed_backend(k, BATON_BE_ESTABLISHED, remote);
  ingress(test::build(syn));
  EXPECT_EQ(backend_entry(k).state, BATON_BE_ESTABLISHED) << "live";
  baton_be_flow ended = backend_entry(k);
  ended.close_flags = BATON_CLOSE_RESET | BATON_CLOSE_REPORTED;
  ASSERT_EQ(bpf_map_update_elem(progs_->be_flows_fd(), &key, &ended, BPF_EXIST), 0);
  ingress(test::build(syn));
  EXPECT_NE(bpf_map_lookup_elem(progs_->be_flows_fd(), &key, &gone), 0) << "ended: gone";
}

// Back-end replies: the segments a Linux server sends, through egress.
std::vector<std::pair<std::string, Segment>> server_segments() {
  std::vector<std::pair<std::string, Segment>> v;
  Segment base;
  base.saddr = kService;  // the programs' service address: here node 1 plays the back end
  base.daddr = test::kClient;
  base.sport = 80;
  base.dport = 40000;
  base.seq = 0x000000f0;  // before isn2: the client-visible number wraps
  base.ack = 1000;
  base.window = 300;
  v.push_back({"bare ACK", base});
  Segment ts = base;
  ts.timestamps = {{0x7ffffffe, 777}};
  v.push_back({"ACK with timestamps", ts});
  Segment data = ts;
  data.flags |= tcp_flag::kPsh;
  data.payload = Bytes(1448, 'x');
  v.push_back({"full data segment", data});
  Segment odd = ts;
  odd.misalign = true;
  v.push_back({"options at odd offsets", odd});
  Segment big_window = ts;
  big_window.window = 0xffff;
  v.push_back({"window that must be clamped", big_window});
  Segment fin = ts;
  fin.flags |= tcp_flag::kFin;
  v.push_back({"FIN", fin});
  return v;
}

TEST_F(BpfProgTest, BackEndRepliesMatchTheCoreRewrite) {
  Translation t = wrapping_translation();
  t.frontend_addr = 0x0a000009;  // the front end the client talks to
  t.backend_addr = kService;
  t.backend_wscale = 9;  // differs from the front end's 7: windows are rescaled
  for (const auto& [name, seg] : server_segments()) {
    Bytes ip = test::build(seg);
    auto parsed = TcpPacket::parse(ip);
    seed_backend(parsed->key().reversed(), BATON_BE_ESTABLISHED, t);
    RunResult r = egress(ip);
    EXPECT_EQ(r.retval, TC_ACT_OK) << name;
    Bytes expected = ip;
    auto ref = TcpPacket::parse(expected);
    rewrite_backend_to_client(t, *ref);
    EXPECT_EQ(r.out, with_eth(expected)) << name << ": BPF and core/ differ";
    Bytes got(r.out.begin() + 14, r.out.end());
    auto out = TcpPacket::parse(got);
    ASSERT_TRUE(out);
    EXPECT_TRUE(out->tcp_checksum_ok()) << name;
    EXPECT_EQ(out->saddr(), 0x0a000009u) << name;
  }
}

TEST_F(BpfProgTest, TrafficThatIsNotOursPassesUntouched) {
  Segment other_addr;
  other_addr.daddr = 0x0a0000fe;
  Segment other_port;
  other_port.dport = 8080;
  Segment unknown_flow;
  unknown_flow.seq = 5;
  for (const auto& s : {other_addr, other_port, unknown_flow}) {
    Bytes ip = test::build(s);
    RunResult r = ingress(ip);
    EXPECT_EQ(r.retval, TC_ACT_OK);
    EXPECT_EQ(r.out, with_eth(ip));
    EXPECT_EQ(r.mark & BATON_SLOW_MARK, 0u);
    r = egress(ip);
    EXPECT_EQ(r.retval, TC_ACT_OK);
    EXPECT_EQ(r.out, with_eth(ip));
  }
  // Not IPv4/TCP at all.
  Bytes udp = test::build(Segment{});
  udp[9] = 17;
  EXPECT_EQ(ingress(udp).out, with_eth(udp));
  Bytes v6 = with_eth(test::build(Segment{}));
  v6[12] = 0x86;
  v6[13] = 0xdd;
  RunResult r = run(progs_->ingress_prog_fd(), v6);
  EXPECT_EQ(r.retval, TC_ACT_OK);
  EXPECT_EQ(r.out, v6);
}

TEST_F(BpfProgTest, SynsAndFlowsBeingDecidedGoToUserSpace) {
  Bytes syn = test::build(test::client_syn(1000, 5));
  RunResult r = ingress(syn);
  EXPECT_EQ(r.retval, TC_ACT_OK);
  EXPECT_EQ(r.out, with_eth(syn));
  EXPECT_EQ(r.mark & BATON_SLOW_MARK, BATON_SLOW_MARK);
  Segment ack;
  ack.seq = 1001;
  ack.ack = 5001;
  Bytes a = test::build(ack);
  seed_frontend(TcpPacket::parse(a)->key(), 0);
  r = ingress(a);
  EXPECT_EQ(r.mark & BATON_SLOW_MARK, BATON_SLOW_MARK);
  EXPECT_EQ(r.out, with_eth(a));
}

// The gate (bpf/baton_abi.h): tc takes a handed-off flow over only once batond has given a verdict to
// every packet tc sent it; until then each packet is counted and queued behind the ones before it.
TEST_F(BpfProgTest, FrontEndTakesAFlowOverOnlyOnceBatondReleasedEverything) {
  const Translation t = wrapping_translation();
  Segment ack;
  ack.seq = 1001;
  ack.ack = 5001;
  ack.timestamps = {{100, 200}};
  Bytes a = test::build(ack);
  const FlowKey k = TcpPacket::parse(a)->key();
  seed_frontend(k, 0);
  const uint64_t opened_before = counter(BATON_CNT_FE_GATE_OPENED);

  const uint32_t counted = BATON_SLOW_MARK | BATON_COUNTED_MARK;
  RunResult r = ingress(a);
  EXPECT_EQ(r.mark & counted, counted) << "held and decided by batond, counted";
  EXPECT_EQ(frontend_entry(k).gate, 1u);
  // Handed off, but batond has given a verdict to none of what it holds: still through batond.
  seed_handoff(k, 0, t);
  r = ingress(a);
  EXPECT_EQ(r.retval, TC_ACT_OK);
  EXPECT_EQ(r.mark & counted, counted);
  EXPECT_EQ(frontend_entry(k).gate, 2u);
  // Not knowing (after an attach) is never equal.
  seed_handoff(k, BATON_RELEASED_UNKNOWN, t);
  EXPECT_EQ(ingress(a).mark & counted, counted);
  EXPECT_EQ(frontend_entry(k).gate, 3u);
  // One verdict short: still queued behind it.
  seed_handoff(k, 2, t);
  EXPECT_EQ(ingress(a).mark & counted, counted);
  EXPECT_EQ(frontend_entry(k).gate, 4u);
  EXPECT_EQ(counter(BATON_CNT_FE_GATE_OPENED), opened_before);
  // Everything released: this packet and every later one goes straight to the back end, translated
  // with the handoff's numbers.
  seed_handoff(k, 4, t);
  for (int i = 0; i < 2; ++i) {
    r = ingress(a);
    EXPECT_EQ(r.retval, TC_ACT_REDIRECT);
    EXPECT_EQ(r.mark & BATON_SLOW_MARK, 0u);
    Bytes expected = a;
    rewrite_client_to_backend(t, *TcpPacket::parse(expected));
    EXPECT_EQ(r.out, with_eth(expected));
  }
  EXPECT_EQ(frontend_entry(k).gate, 4u | BATON_GATE_OPEN);
  EXPECT_EQ(counter(BATON_CNT_FE_GATE_OPENED), opened_before + 1) << "opened once";
  // A SYN on the tuple is a new connection (or a retransmission): batond decides, uncounted.
  Bytes syn = test::build(test::client_syn(1000, 5));
  seed_frontend(TcpPacket::parse(syn)->key(), BATON_GATE_OPEN, t);
  r = ingress(syn);
  EXPECT_EQ(r.mark & counted, BATON_SLOW_MARK);
  EXPECT_EQ(r.out, with_eth(syn));
}

// A flow served locally switches from batond to the local stack the same way: only once drained.
TEST_F(BpfProgTest, AFlowServedLocallyGoesToTheStackOnlyOnceDrained) {
  Segment ack;
  ack.seq = 1001;
  ack.ack = 5001;
  Bytes a = test::build(ack);
  const FlowKey k = TcpPacket::parse(a)->key();
  seed_frontend(k, 0);
  const uint32_t counted = BATON_SLOW_MARK | BATON_COUNTED_MARK;
  EXPECT_EQ(ingress(a).mark & counted, counted);
  EXPECT_EQ(ingress(a).mark & counted, counted);
  baton_flow_key key = to_abi(k);
  baton_fe_handoff h{};
  h.released = 1;  // one verdict short
  h.flags = BATON_HANDOFF_LOCAL;
  ASSERT_EQ(bpf_map_update_elem(progs_->fe_handoffs_fd(), &key, &h, BPF_ANY), 0);
  EXPECT_EQ(ingress(a).mark & counted, counted) << "still queued behind what batond holds";
  EXPECT_TRUE(events().empty());
  h.released = 3;
  ASSERT_EQ(bpf_map_update_elem(progs_->fe_handoffs_fd(), &key, &h, BPF_ANY), 0);
  RunResult r = ingress(a);
  EXPECT_EQ(r.retval, TC_ACT_OK);
  EXPECT_EQ(r.mark & BATON_SLOW_MARK, 0u) << "to the stack, not to batond";
  EXPECT_EQ(r.out, with_eth(a)) << "untouched";
  baton_fe_flow gone{};
  EXPECT_NE(bpf_map_lookup_elem(progs_->fe_flows_fd(), &key, &gone), 0) << "tc forgot the flow";
  EXPECT_NE(bpf_map_lookup_elem(progs_->fe_handoffs_fd(), &key, &h), 0);
  auto ev = events();
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].type, BATON_EV_FE_RELEASED);
  EXPECT_EQ(from_abi(ev[0].key), k);
  r = ingress(a);
  EXPECT_EQ(r.mark & BATON_SLOW_MARK, 0u) << "an unknown flow: passes";
}

TEST_F(BpfProgTest, SynsOfAFlowBeingDecidedAreCountedButNeverOpenTheGate) {
  Bytes syn = test::build(test::client_syn(1000, 5));
  const FlowKey k = TcpPacket::parse(syn)->key();
  seed_frontend(k, 0);
  seed_handoff(k, 0, wrapping_translation());
  const uint32_t counted = BATON_SLOW_MARK | BATON_COUNTED_MARK;
  EXPECT_EQ(ingress(syn).mark & counted, counted);
  EXPECT_EQ(frontend_entry(k).gate, 1u) << "a SYN does not open the gate, even when it could";
}

// The two parsers judge alike: a packet is rewritten and redirected by tc exactly when core/ parses it
// (and then into the same bytes); any other packet passes untouched (parser parity).
class ParserParity {
 public:
  explicit ParserParity(const Translation& t) : t_(t) {}
  // What tc ingress did with a packet (possibly broken) of a forwarded flow, against core/: a packet it
  // parses is rewritten alike; one it rejects but whose 4-tuple it reads (peek_tcp) is dropped as
  // malformed and counted (Frontend::on_client_packet drops it too); any other passes untouched.
  // malformed_drops: the drop counter's rise over this packet.
  void check(const RunResult& r, const Bytes& ip, const Bytes& frame, const std::string& what,
             uint64_t malformed_drops) const {
    Bytes copy = ip;
    auto parsed = TcpPacket::parse(copy);
    const bool tuple = peek_tcp(ip).has_value();
    const int expected_verdict = parsed ? TC_ACT_REDIRECT : tuple ? TC_ACT_SHOT : TC_ACT_OK;
    EXPECT_EQ(r.retval, expected_verdict) << what << ": core/ " << (parsed ? "accepts" : "rejects") << " it"
                                          << (tuple ? "" : " and cannot read its 4-tuple");
    EXPECT_EQ(malformed_drops, !parsed && tuple ? 1u : 0u) << what << ": counted as a malformed drop";
    if (r.retval == TC_ACT_REDIRECT && parsed) {
      rewrite_client_to_backend(t_, *parsed);
      Bytes expected = copy;
      expected.resize(parsed->bytes().size());
      // The frame's link-layer padding (bytes past the IP total length) is not the parser's business.
      EXPECT_EQ(Bytes(r.out.begin(), r.out.begin() + static_cast<std::ptrdiff_t>(14 + expected.size())),
                with_eth(expected))
          << what;
    } else {
      EXPECT_EQ(r.out, frame) << what << ": a packet tc does not rewrite is left as it was";
    }
  }

 private:
  Translation t_;
};

TEST_F(BpfProgTest, TruncatedAndMalformedPacketsAreJudgedAsCoreJudgesThem) {
  Segment s;
  s.timestamps = {{1, 2}};
  s.sack = {{1, 2}, {3, 4}};
  Bytes good = test::build(s);
  const ParserParity parity(wrapping_translation());
  seed_frontend(TcpPacket::parse(good)->key(), BATON_GATE_OPEN, wrapping_translation());
  for (size_t len = 0; len < good.size(); ++len) {
    Bytes cut(good.begin(), good.begin() + static_cast<std::ptrdiff_t>(len));
    Bytes frame = with_eth(cut);
    const uint64_t drops_before = dropped(BATON_DROP_MALFORMED);
    RunResult r = run(progs_->ingress_prog_fd(), frame, 0, false);
    // The kernel refuses to build an skb from frames without a whole IPv4 header: nothing to test there.
    if (r.error != 0 && len < 20) continue;
    ASSERT_EQ(r.error, 0) << "truncated to " << len;
    if (len < 20) {
      EXPECT_EQ(r.out, frame) << "truncated to " << len;
      continue;
    }
    parity.check(r, cut, frame, "truncated to " + std::to_string(len),
                 dropped(BATON_DROP_MALFORMED) - drops_before);
  }
  // Broken options in a whole packet: the flow's own is dropped and counted, another flow's passes.
  Bytes bad_opt = good;
  bad_opt[20 + 23] = 40;  // the timestamp option's length, now running past the header
  const uint64_t drops_before = dropped(BATON_DROP_MALFORMED);
  EXPECT_EQ(ingress(bad_opt).retval, TC_ACT_SHOT);
  EXPECT_EQ(dropped(BATON_DROP_MALFORMED), drops_before + 1);
  Segment other = s;
  other.sport = 40001;
  Bytes other_bad = test::build(other);
  other_bad[20 + 23] = 40;
  RunResult r = ingress(other_bad);
  EXPECT_EQ(r.retval, TC_ACT_OK);
  EXPECT_EQ(r.out, with_eth(other_bad));
  EXPECT_EQ(dropped(BATON_DROP_MALFORMED), drops_before + 1);
}

TEST_F(BpfProgTest, OptionsOfTheWrongLengthAreJudgedAsCoreJudgesThem) {
  // Every option a stack sends, then each one's length byte set to every value from 0 to 12.
  Segment s;
  s.mss = 1460;
  s.wscale = 7;
  s.sack_permitted = true;
  s.timestamps = {{1, 2}};
  s.sack = {{1, 2}};
  const Bytes good = test::build(s);
  const ParserParity parity(wrapping_translation());
  Bytes key_of = good;
  seed_frontend(TcpPacket::parse(key_of)->key(), BATON_GATE_OPEN, wrapping_translation());
  size_t checked = 0;
  for (size_t off = 40; off + 1 < good.size();) {
    const uint8_t kind = good[off];
    if (kind == tcp_opt::kNop) {
      ++off;
      continue;
    }
    for (uint8_t len = 0; len <= 12; ++len) {
      Bytes bad = good;
      bad[off + 1] = len;
      const uint64_t drops_before = dropped(BATON_DROP_MALFORMED);
      const RunResult r = ingress(bad);
      parity.check(r, bad, with_eth(bad),
                   "option " + std::to_string(kind) + " with length " + std::to_string(len),
                   dropped(BATON_DROP_MALFORMED) - drops_before);
      ++checked;
    }
    off += good[off + 1];
  }
  EXPECT_GE(checked, 5u * 13u) << "every option of the packet was tried";
}

TEST_F(BpfProgTest, BackEndCapturesTheReplayedSynAck) {
  Segment synack = test::server_synack(kService, 0xabcdef00, 1000, 4242, 17, 9);
  Bytes ip = test::build(synack);
  FlowKey k = TcpPacket::parse(ip)->key().reversed();
  seed_backend(k, BATON_BE_CAPTURE);
  const uint64_t captured = dropped(BATON_DROP_CAPTURED);
  RunResult r = egress(ip);
  EXPECT_EQ(r.retval, TC_ACT_SHOT) << "the client must never see the back end's SYN/ACK";
  EXPECT_EQ(dropped(BATON_DROP_CAPTURED), captured + 1);
  auto ev = events();
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].type, BATON_EV_BE_SYNACK);
  EXPECT_EQ(ev[0].seq, 0xabcdef00u);
  EXPECT_EQ(ev[0].ack, 1001u);
  EXPECT_EQ(ev[0].tsval, 4242u);
  EXPECT_EQ(ev[0].wscale, 9);
  EXPECT_EQ(ev[0].mss, 1460);
  EXPECT_EQ(ev[0].sack_permitted, 1);
  EXPECT_EQ(ev[0].key.saddr, htonl(test::kClient));
  // An earlier socket's reset on the tuple (this connection's own, let go when it moved away and came
  // back): not an answer to our SYN, dropped without a word.
  Segment rst = synack;
  rst.flags = tcp_flag::kRst | tcp_flag::kAck;
  rst.timestamps.reset();
  rst.mss.reset();
  rst.wscale.reset();
  rst.sack_permitted = false;
  EXPECT_EQ(egress(test::build(rst)).retval, TC_ACT_SHOT);
  EXPECT_EQ(events().size(), 1u);
  // The stack's reset of our SYN (nothing listens; sequence number 0, the SYN had no ACK): refused.
  rst.seq = 0;
  r = egress(test::build(rst));
  EXPECT_EQ(r.retval, TC_ACT_SHOT);
  ev = events();
  ASSERT_EQ(ev.size(), 2u);
  EXPECT_EQ(ev[1].type, BATON_EV_BE_REFUSED);
  // A bare ACK (an old TIME_WAIT's answer): reported as blocked, with its numbers, and dropped.
  Segment ack = rst;
  ack.flags = tcp_flag::kAck;
  ack.seq = 77;
  ack.ack = 88;
  r = egress(test::build(ack));
  EXPECT_EQ(r.retval, TC_ACT_SHOT);
  ev = events();
  ASSERT_EQ(ev.size(), 3u);
  EXPECT_EQ(ev[2].type, BATON_EV_BE_BLOCKED);
  EXPECT_EQ(ev[2].ack, 88u);
}

TEST_F(BpfProgTest, FrontEndReportsItsSynAckAndDropsItAfterTheHandoff) {
  Bytes ip = test::build(test::server_synack(kService, 5000, 1000, 4242, 17, 7));
  FlowKey k = TcpPacket::parse(ip)->key().reversed();
  seed_frontend(k, 0);
  RunResult r = egress(ip);
  EXPECT_EQ(r.retval, TC_ACT_OK);
  EXPECT_EQ(r.out, with_eth(ip));
  auto ev = events();
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].type, BATON_EV_FE_SYNACK);
  EXPECT_EQ(ev[0].seq, 5000u);
  // Once the client's ACK went by, our stack's retransmissions are of no use to the client.
  Segment ack;
  ack.seq = 1001;
  ack.ack = 5001;
  ingress(test::build(ack));
  const uint64_t repeats = dropped(BATON_DROP_SYNACK_REPEAT);
  EXPECT_EQ(egress(ip).retval, TC_ACT_SHOT);
  EXPECT_EQ(events().size(), 1u) << "no second report";
  seed_frontend(k, BATON_GATE_OPEN, wrapping_translation());
  EXPECT_EQ(egress(ip).retval, TC_ACT_SHOT);
  EXPECT_EQ(dropped(BATON_DROP_SYNACK_REPEAT), repeats + 2);
}

TEST_F(BpfProgTest, ASilencedFlowSendsTheClientNothing) {
  // Moving to another node (multiple handoff): its web server's FIN, or the kernel's reset when batond
  // lets the socket go, must not reach the client.
  Segment s = server_segments()[1].second;
  s.flags = tcp_flag::kFin | tcp_flag::kAck;
  Bytes ip = test::build(s);
  const FlowKey k = TcpPacket::parse(ip)->key().reversed();
  seed_backend(k, BATON_BE_SILENT, wrapping_translation());
  const uint64_t before = dropped(BATON_DROP_SILENCED);
  EXPECT_EQ(egress(ip).retval, TC_ACT_SHOT);
  EXPECT_EQ(dropped(BATON_DROP_SILENCED), before + 1);
  EXPECT_EQ(backend_entry(k).close_flags & BATON_CLOSE_SERVER_FIN, 0u) << "nothing the client saw";
  seed_backend(k, BATON_BE_ESTABLISHED, wrapping_translation());
  EXPECT_EQ(egress(ip).retval, TC_ACT_OK);
}

TEST_F(BpfProgTest, PacketsUserSpaceRewroteAreLeftAlone) {
  Segment s = server_segments()[1].second;
  Bytes ip = test::build(s);
  seed_backend(TcpPacket::parse(ip)->key().reversed(), BATON_BE_ESTABLISHED, wrapping_translation());
  RunResult r = egress(ip, BATON_DONE_MARK);
  EXPECT_EQ(r.retval, TC_ACT_OK);
  EXPECT_EQ(r.out, with_eth(ip));
}

TEST_F(BpfProgTest, CloseIsTrackedAcrossBothDirectionsAndReportedOnce) {
  Translation t = wrapping_translation();
  t.frontend_addr = 0x0a000009;
  t.backend_addr = kService;
  // Server FIN (back-end space seq 0x200 + 0 bytes -> ends at 0x201).
  Segment fin = server_segments()[0].second;
  fin.seq = 0x200;
  fin.flags = tcp_flag::kAck | tcp_flag::kFin;
  Bytes fin_ip = test::build(fin);
  FlowKey k = TcpPacket::parse(fin_ip)->key().reversed();
  seed_backend(k, BATON_BE_ESTABLISHED, t);
  egress(fin_ip);
  // Client FIN+ACK of ours (already translated by the front end: back-end space).
  Segment cfin;
  cfin.daddr = kService;
  cfin.seq = 999;
  cfin.ack = 0x201;
  cfin.flags = tcp_flag::kAck | tcp_flag::kFin;
  EXPECT_EQ(ingress(test::build(cfin)).retval, TC_ACT_OK);
  EXPECT_TRUE(events().empty()) << "our ACK of the client's FIN is still missing";
  Segment last = fin;
  last.seq = 0x201;
  last.ack = 1000;
  last.flags = tcp_flag::kAck;
  egress(test::build(last));
  auto ev = events();
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].type, BATON_EV_BE_CLOSED);
  EXPECT_EQ(ev[0].reset, 0u);
  egress(test::build(last));  // a retransmission: no second report
  EXPECT_EQ(events().size(), 1u);
  EXPECT_NE(backend_entry(k).close_flags & BATON_CLOSE_REPORTED, 0u);
}

}  // namespace
}  // namespace baton
