// Kernel triage (bpf/baton_abi.h, struct baton_fe_triage): tc follows a new connection from its SYN and
// gives its first request to the local stack itself when the content map says this node serves it;
// everything else goes to batond with what batond needs to take the flow over. The request-line matcher
// is checked against core's own peek + dispatch: "local" in the kernel must mean local in core.
#include <map>
#include <set>

#include "core/dispatch.hpp"
#include "core/http_peek.hpp"
#include "tests/bpf/bpf_fixture.hpp"

namespace baton {
namespace {

using namespace bpftest;  // NOLINT(google-build-using-namespace): the fixture's vocabulary

constexpr NodeId kSelf = 1;  // the programs run as node 1 (kService)
constexpr uint32_t kIsn = 1000;
constexpr uint32_t kIsn1 = 5000;
const std::string kLongLocal = "/n1/" + std::string(BATON_PATH_MAX - 4, 'x');

class TriageTest : public BpfProgTest {
 protected:
  void SetUp() override {
    BpfProgTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    map_ = ContentMap();
    map_.add({"/n1/", {1}});
    map_.add({"/n2/", {2}});
    map_.add({"/shared/", {2, 1}});
    // A rule exactly as long as tc's keys, held here, under a longer one that is not: cut to fit, the
    // two share one entry that only user space can resolve.
    map_.add({kLongLocal, {1}});
    map_.add({kLongLocal + "/n2/", {2}});
    map_.set_default({});
    load_content(map_, kSelf);
    set_triage(1);
    set_runtime(BATON_RT_WATCH, 1);
  }
  void TearDown() override {
    if (progs_) {
      set_triage(0);
      set_runtime(BATON_RT_WATCH, 0);
      clear_content();
    }
    BpfProgTest::TearDown();
  }
  static void set_triage(uint32_t on) { set_runtime(BATON_RT_TRIAGE, on); }
  static std::optional<baton_fe_triage> triage_entry(const FlowKey& k) {
    baton_flow_key key = to_abi(k);
    baton_fe_triage t{};
    if (bpf_map_lookup_elem(progs_->fe_triage_fd(), &key, &t) != 0) return std::nullopt;
    return t;
  }
  static bool has_frontend_entry(const FlowKey& k) {
    baton_flow_key key = to_abi(k);
    baton_fe_flow v{};
    return bpf_map_lookup_elem(progs_->fe_flows_fd(), &key, &v) == 0;
  }

  // Client port `sport` through SYN, our SYN/ACK and the bare ACK, as tc sees them.
  Bytes handshake(uint16_t sport) {
    test::Segment syn = test::client_syn(kIsn, 77);
    syn.sport = sport;
    Bytes s = test::build(syn);
    RunResult r = ingress(s);
    EXPECT_EQ(r.retval, TC_ACT_OK);
    EXPECT_EQ(r.mark & BATON_SLOW_MARK, 0u) << "tc follows the SYN itself";
    test::Segment sa = test::server_synack(kService, kIsn1, kIsn, 4242, 77, 7);
    sa.dport = sport;
    EXPECT_EQ(egress(test::build(sa)).retval, TC_ACT_OK);
    const uint64_t absorbed = dropped(BATON_DROP_ACK_ABSORBED);
    RunResult a = ingress(test::build(client_ack(sport, {})));
    EXPECT_EQ(a.retval, TC_ACT_SHOT) << "the bare handshake ACK is absorbed";
    EXPECT_EQ(dropped(BATON_DROP_ACK_ABSORBED), absorbed + 1);
    return s;
  }
  static test::Segment client_ack(uint16_t sport, Bytes payload, uint32_t seq = kIsn + 1) {
    test::Segment a;
    a.sport = sport;
    a.seq = seq;
    a.ack = kIsn1 + 1;
    a.timestamps = {{78, 4242}};
    a.payload = std::move(payload);
    return a;
  }
  static FlowKey key_of(uint16_t sport) { return FlowKey{test::kClient, kService, sport, 80}; }
  // The verdict on a first request: true when tc gave it to the local stack, false when to batond.
  bool kernel_serves(const std::string& request, uint16_t sport) {
    handshake(sport);
    RunResult r = ingress(test::build(client_ack(sport, test::as_bytes(request))));
    EXPECT_EQ(r.retval, TC_ACT_OK);
    if (r.mark & BATON_SLOW_MARK) {
      EXPECT_EQ(r.mark & BATON_COUNTED_MARK, BATON_COUNTED_MARK) << request;
      EXPECT_TRUE(has_frontend_entry(key_of(sport))) << request;
      EXPECT_TRUE(triage_entry(key_of(sport))) << "batond takes the flow over from it";
      return false;
    }
    // Forgotten, or watched for the next request (a whole request without a body).
    auto t = triage_entry(key_of(sport));
    EXPECT_TRUE(!t || (t->flags & BATON_TRIAGE_LOCAL_WATCH)) << request;
    EXPECT_FALSE(has_frontend_entry(key_of(sport))) << request;
    return true;
  }

  ContentMap map_;
};

TEST_F(TriageTest, ALocalRequestNeverReachesUserSpace) {
  const uint64_t local_before = counter(BATON_CNT_FE_TRIAGE_LOCAL);
  const Bytes syn = handshake(41000);
  auto t = triage_entry(key_of(41000));
  ASSERT_TRUE(t);
  EXPECT_EQ(t->client_isn, kIsn);
  EXPECT_EQ(t->isn1, kIsn1);
  EXPECT_EQ(t->flags, BATON_TRIAGE_SYNACK_SEEN | BATON_TRIAGE_CLIENT_ACKED);
  EXPECT_EQ(Bytes(t->syn, t->syn + t->syn_len), syn);
  // The stack's SYN/ACK retransmission is of no use to a client that answered.
  test::Segment sa = test::server_synack(kService, kIsn1, kIsn, 4343, 77, 7);
  sa.dport = 41000;
  EXPECT_EQ(egress(test::build(sa)).retval, TC_ACT_SHOT);
  const std::string request = "GET /n1/a.txt HTTP/1.1\r\nHost: x\r\n\r\n";
  const Bytes req = test::build(client_ack(41000, test::as_bytes(request)));
  RunResult r = ingress(req);
  EXPECT_EQ(r.retval, TC_ACT_OK);
  EXPECT_EQ(r.mark, 0u);
  EXPECT_EQ(r.out, with_eth(req)) << "untouched";
  EXPECT_FALSE(has_frontend_entry(key_of(41000)));
  EXPECT_EQ(counter(BATON_CNT_FE_TRIAGE_LOCAL), local_before + 1);
  // A whole request without a body: the next one is watched, where it starts.
  t = triage_entry(key_of(41000));
  ASSERT_TRUE(t);
  EXPECT_TRUE(t->flags & BATON_TRIAGE_LOCAL_WATCH);
  EXPECT_EQ(t->next_request, kIsn + 1 + static_cast<uint32_t>(request.size()));
  // A request with a body is served here too, but where the next one starts is not known: forgotten.
  handshake(41001);
  r = ingress(
      test::build(client_ack(41001, test::as_bytes("POST /n1/a HTTP/1.1\r\nContent-Length: 2\r\n\r\nab"))));
  EXPECT_EQ(r.mark, 0u);
  EXPECT_FALSE(triage_entry(key_of(41001)));
}

TEST_F(TriageTest, AConnectionServedHereIsWatchedAtEachRequest) {
  handshake(41100);
  const std::string first = "GET /n1/a HTTP/1.1\r\n\r\n", second = "GET /n1/b HTTP/1.1\r\n\r\n";
  ingress(test::build(client_ack(41100, test::as_bytes(first))));
  const uint32_t b2 = kIsn + 1 + static_cast<uint32_t>(first.size());
  // Acknowledgements and a retransmission before the boundary pass untouched.
  EXPECT_EQ(ingress(test::build(client_ack(41100, {}, b2))).mark, 0u);
  EXPECT_EQ(ingress(test::build(client_ack(41100, test::as_bytes(first)))).mark, 0u);
  // This node's content again: on to the stack, the boundary moves.
  const uint64_t kernel_before = counter(BATON_CNT_FE_REQUEST_KERNEL);
  RunResult r = ingress(test::build(client_ack(41100, test::as_bytes(second), b2)));
  EXPECT_EQ(r.retval, TC_ACT_OK);
  EXPECT_EQ(r.mark, 0u);
  EXPECT_EQ(counter(BATON_CNT_FE_REQUEST_KERNEL), kernel_before + 1);
  const uint32_t b3 = b2 + static_cast<uint32_t>(second.size());
  ASSERT_TRUE(triage_entry(key_of(41100)));
  EXPECT_EQ(triage_entry(key_of(41100))->next_request, b3);
  // Node 2's content: batond takes the connection over from this segment, which starts a request.
  r = ingress(test::build(client_ack(41100, test::as_bytes("GET /n2/c HTTP/1.1\r\n\r\n"), b3)));
  EXPECT_EQ(r.retval, TC_ACT_OK);
  EXPECT_EQ(r.mark & (BATON_SLOW_MARK | BATON_COUNTED_MARK | BATON_BOUNDARY_MARK),
            BATON_SLOW_MARK | BATON_COUNTED_MARK | BATON_BOUNDARY_MARK);
  EXPECT_TRUE(has_frontend_entry(key_of(41100)));
  EXPECT_TRUE(triage_entry(key_of(41100))) << "batond finds the SYN and SYN/ACK there";
  // A FIN ends the watching; so does a segment past the boundary (the one at it was lost).
  handshake(41101);
  ingress(test::build(client_ack(41101, test::as_bytes(first))));
  test::Segment fin = client_ack(41101, {}, b2);
  fin.flags |= tcp_flag::kFin;
  EXPECT_EQ(ingress(test::build(fin)).mark, 0u);
  EXPECT_FALSE(triage_entry(key_of(41101)));
  handshake(41102);
  ingress(test::build(client_ack(41102, test::as_bytes(first))));
  EXPECT_EQ(ingress(test::build(client_ack(41102, test::as_bytes(second), b2 + 5))).mark, 0u);
  EXPECT_FALSE(triage_entry(key_of(41102)));
}

TEST_F(TriageTest, AnotherNodesRequestGoesToBatondWithTheRecordToTakeItOver) {
  const uint64_t slow_before = counter(BATON_CNT_FE_TRIAGE_SLOW);
  const Bytes syn = handshake(41001);
  RunResult r = ingress(test::build(client_ack(41001, test::as_bytes("GET /n2/a.txt HTTP/1.1\r\n\r\n"))));
  EXPECT_EQ(r.retval, TC_ACT_OK);
  EXPECT_EQ(r.mark & (BATON_SLOW_MARK | BATON_COUNTED_MARK), BATON_SLOW_MARK | BATON_COUNTED_MARK);
  EXPECT_EQ(frontend_entry(key_of(41001)).gate, 1u) << "counted through the gate";
  EXPECT_EQ(frontend_entry(key_of(41001)).flags & BATON_FE_CLIENT_ACKED, BATON_FE_CLIENT_ACKED);
  auto t = triage_entry(key_of(41001));
  ASSERT_TRUE(t);
  TriageRecord rec = from_abi(*t);
  EXPECT_EQ(rec.syn, syn);
  ASSERT_TRUE(rec.synack);
  EXPECT_EQ(rec.synack->seq, kIsn1);
  EXPECT_EQ(rec.synack->ack, kIsn + 1);
  EXPECT_EQ(rec.synack->tsval, 4242u);
  EXPECT_EQ(rec.synack->wscale, 7);
  EXPECT_EQ(rec.synack->mss, 1460);
  EXPECT_TRUE(rec.synack->sack_permitted);
  EXPECT_EQ(counter(BATON_CNT_FE_TRIAGE_SLOW), slow_before + 1);
  // The next segment is the flow's like any other batond decides.
  r = ingress(test::build(client_ack(41001, {}, kIsn + 1 + 26)));
  EXPECT_EQ(r.mark & BATON_COUNTED_MARK, BATON_COUNTED_MARK);
  EXPECT_EQ(frontend_entry(key_of(41001)).gate, 2u);
}

TEST_F(TriageTest, AFullFlowMapGivesANewConnectionToTheStackAndEvictsNoOther) {
  // Filled to the brim with other connections (tc never evicts one: it would break it silently).
  const uint32_t capacity = flow_map_capacity(kMaxFlows);
  baton_fe_flow v{};
  v.watch_node = BATON_WATCH_OFF;
  for (uint32_t i = 0; i < capacity; ++i) {
    baton_flow_key k = to_abi(FlowKey{test::kClient + 1 + i, kService, 50000, 80});
    ASSERT_EQ(bpf_map_update_elem(progs_->fe_flows_fd(), &k, &v, BPF_NOEXIST), 0) << i;
  }
  baton_flow_key extra = to_abi(FlowKey{test::kClient - 1, kService, 50000, 80});
  EXPECT_EQ(bpf_map_update_elem(progs_->fe_flows_fd(), &extra, &v, BPF_NOEXIST), -E2BIG)
      << "a full map refuses (batond counts map_full and refuses or serves the flow here)";

  const uint64_t full_before = counter(BATON_CNT_FE_TRIAGE_FULL);
  handshake(41009);
  RunResult r = ingress(test::build(client_ack(41009, test::as_bytes("GET /n2/a.txt HTTP/1.1\r\n\r\n"))));
  EXPECT_EQ(r.retval, TC_ACT_OK);
  EXPECT_EQ(r.mark & BATON_SLOW_MARK, 0u) << "no room for one more flow to decide: the stack serves it";
  EXPECT_FALSE(triage_entry(key_of(41009)));
  EXPECT_EQ(counter(BATON_CNT_FE_TRIAGE_FULL), full_before + 1);
  for (uint32_t i = 0; i < capacity; ++i) {
    baton_flow_key k = to_abi(FlowKey{test::kClient + 1 + i, kService, 50000, 80});
    ASSERT_EQ(bpf_map_lookup_elem(progs_->fe_flows_fd(), &k, &v), 0) << "connection " << i << " evicted";
  }
}

TEST_F(TriageTest, ANewConnectionOnTheTupleOfAFlowThatIsOverIsTriagedLikeAnyOther) {
  // Clients reuse a port at once when the server closed first (no TIME_WAIT on their side), while the
  // front end still lingers on the old flow.
  const FlowKey ended = key_of(41101);
  const FlowKey drained = key_of(41102);
  const FlowKey live = key_of(41103);
  const FlowKey draining = key_of(41104);
  seed_frontend(ended, BATON_GATE_OPEN | 5);
  seed_handoff(ended, 5, {}, 0, BATON_WATCH_OFF, BATON_HANDOFF_ENDED);
  Translation own;  // this node served that one as its own back end: a back-end entry on the tuple too
  own.frontend_addr = kService;
  own.backend_addr = kService;
  seed_backend(ended, BATON_BE_ESTABLISHED, own);
  seed_frontend(drained, 3);
  seed_handoff(drained, 3, {}, 0, BATON_WATCH_OFF, BATON_HANDOFF_LOCAL);
  seed_frontend(live, BATON_GATE_OPEN | 5);
  seed_handoff(live, 5, {});
  seed_frontend(draining, 3);
  seed_handoff(draining, 2, {}, 0, BATON_WATCH_OFF, BATON_HANDOFF_LOCAL);
  const uint64_t before = counter(BATON_CNT_FE_SUPERSEDED);
  const size_t events_before = events().size();

  handshake(41101);  // checks that tc followed the SYN itself and absorbed the bare ACK
  handshake(41102);
  for (const FlowKey& k : {ended, drained}) {
    EXPECT_FALSE(has_frontend_entry(k)) << "the old flow is forgotten";
    baton_flow_key key = to_abi(k);
    baton_fe_handoff h{};
    EXPECT_NE(bpf_map_lookup_elem(progs_->fe_handoffs_fd(), &key, &h), 0);
    auto t = triage_entry(k);
    ASSERT_TRUE(t) << "the new connection is triaged";
    EXPECT_EQ(t->client_isn, kIsn);
  }
  EXPECT_EQ(counter(BATON_CNT_FE_SUPERSEDED), before + 2);
  baton_flow_key own_key = to_abi(ended);
  baton_be_flow be{};
  EXPECT_NE(bpf_map_lookup_elem(progs_->be_flows_fd(), &own_key, &be), 0)
      << "the old back-end entry would take the new connection's request";
  auto ev = events();
  ASSERT_EQ(ev.size(), events_before + 2);
  EXPECT_EQ(ev[events_before].type, BATON_EV_FE_SUPERSEDED);
  EXPECT_EQ(from_abi(ev[events_before].key), ended);
  EXPECT_EQ(ev[events_before + 1].type, BATON_EV_FE_SUPERSEDED);
  EXPECT_EQ(from_abi(ev[events_before + 1].key), drained);

  // A flow still live, or one whose last packets batond still holds: its SYN is batond's to judge.
  for (uint16_t sport : {41103, 41104}) {
    test::Segment syn = test::client_syn(kIsn, 77);
    syn.sport = sport;
    RunResult r = ingress(test::build(syn));
    EXPECT_EQ(r.mark & BATON_SLOW_MARK, BATON_SLOW_MARK) << sport;
    EXPECT_TRUE(has_frontend_entry(key_of(sport))) << sport;
    EXPECT_FALSE(triage_entry(key_of(sport))) << sport;
  }
  EXPECT_EQ(counter(BATON_CNT_FE_SUPERSEDED), before + 2);
}

TEST_F(TriageTest, WhatTheKernelCannotTellGoesToBatond) {
  const std::string cut_rule_path = kLongLocal + "/n2/a";
  const std::vector<std::string> undecided = {
      "GET /n1/a.txt HTT",                                       // the line ends in a later segment
      "GET /n1/a.txt",                                           // too short to tell
      "get /n1/a.txt HTTP/1.1\r\n\r\n",                          // not a method of capitals
      "GET http://x/n1/a.txt HTTP/1.1\r\n\r\n",                  // absolute form
      "GET /n1/a\x01.txt HTTP/1.1\r\n\r\n",                      // a control byte in the target
      "GET /n1/a.txt HTTP/2.0\r\n\r\n",                          // not HTTP/1.x
      "GET /n1/a.txt HTTP/1.1 \r\n\r\n",                         // not a line core would route as given
      "GET /n1/" + std::string(300, 'a') + " HTTP/1.1\r\n\r\n",  // longer than tc reads
      "GET " + cut_rule_path + " HTTP/1.1\r\n\r\n",              // a rule longer than tc's keys
      "GET /n2/a.txt HTTP/1.1\r\n\r\n",                          // another node's
      "\r\nGET /n1/a.txt HTTP/1.1\r\n\r\n",                      // leading empty line
  };
  uint16_t port = 42000;
  for (const auto& req : undecided) {
    EXPECT_FALSE(kernel_serves(req, port++)) << req;
  }
  // The right request, but not at the start of the stream (its first segment was lost or reordered).
  handshake(port);
  RunResult r =
      ingress(test::build(client_ack(port, test::as_bytes("GET /n1/a HTTP/1.1\r\n\r\n"), kIsn + 9)));
  EXPECT_EQ(r.mark & BATON_SLOW_MARK, BATON_SLOW_MARK);
}

TEST_F(TriageTest, AnUnsureEntryIsNeverLocal) {
  // prefix_entries never marks a cut entry local, but the kernel must not rely on it.
  ContentEntryAbi a = to_abi(PrefixEntry{"/u/", true, true, 0b10, false});
  ASSERT_EQ(bpf_map_update_elem(progs_->content_fd(), &a.key, &a.value, BPF_ANY), 0);
  EXPECT_FALSE(kernel_serves("GET /u/x HTTP/1.1\r\n\r\n", 42900));
  a.value.flags = BATON_CONTENT_LOCAL;
  ASSERT_EQ(bpf_map_update_elem(progs_->content_fd(), &a.key, &a.value, BPF_ANY), 0);
  EXPECT_TRUE(kernel_serves("GET /u/x HTTP/1.1\r\n\r\n", 42901));
}

TEST_F(TriageTest, LocalFormsTheKernelServes) {
  const std::vector<std::string> local = {
      "GET /n1/a.txt HTTP/1.1\r\n\r\n",
      "HEAD /n1/a.txt?x=/n2/ HTTP/1.0\r\n\r\n",  // the query is not the path
      "POST /n1/form#frag HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc",
      "GET /shared/x HTTP/1.1\n\n",       // held here too; bare LF ends a line
      "GET /elsewhere HTTP/1.1\r\n",      // no rule, no default holder: served where it arrives
      "GET /n1 HTTP/1.1\r\nHost: a\r\n",  // "/n1" is not under "/n1/": the default
      "GET /n1/" + std::string(BATON_PATH_MAX, 'y') + " HTTP/1.1\r\n",  // long, but no cut rule under it
  };
  uint16_t port = 43000;
  for (const auto& req : local) {
    EXPECT_TRUE(kernel_serves(req, port++)) << req;
  }
}

// tc's "local" must be core's "local" (peek + dispatch with every peer reachable), and every plain
// request core serves here must be recognised by tc, or local requests would pay for user space.
TEST_F(TriageTest, AgreesWithCoresPeekAndDispatch) {
  map_.set_default({2});
  load_content(map_, kSelf);
  const std::vector<std::string> methods = {"GET", "HEAD", "POST", "OPTIONS", "get", "G3T"};
  const std::vector<std::string> targets = {"/n1/a", "/n2/a",        "/shared/a", "/n1",
                                            "/",     "/n1/?q",       "/n2/#f",    "/zzz",
                                            "*",     "http://h/n1/", "/n1/%20x",  "/n1/a?b c"};
  const std::vector<std::string> tails = {" HTTP/1.1\r\n\r\n", " HTTP/1.0\r\n", " HTTP/1.1\n\n",
                                          " HTTP/3.0\r\n", " HTTP/1.1"};
  PeerView all_up{[](NodeId) { return true; }, [](NodeId) { return 0u; }};
  uint16_t port = 44000;
  int local_seen = 0;
  for (const auto& m : methods) {
    for (const auto& t : targets) {
      for (const auto& tail : tails) {
        const std::string req = m + " " + t + tail;
        const Bytes bytes = test::as_bytes(req + "Host: a\r\n\r\n");
        PeekResult peek = peek_http_request(bytes);
        bool core_local = peek.status == PeekStatus::kBad ||
                          (peek.status == PeekStatus::kComplete &&
                           choose_node(map_, peek.head.path, kSelf, all_up).node == kSelf);
        const bool kernel_local = kernel_serves(req, port++);
        if (kernel_local) {
          ++local_seen;
          EXPECT_TRUE(core_local) << req;
        }
        const bool plain = peek.status == PeekStatus::kComplete && m != "get" && m != "G3T" &&
                           t.front() == '/' && t.find(' ') == std::string::npos && tail != " HTTP/1.1";
        if (plain && core_local) {
          EXPECT_TRUE(kernel_local) << req;
        }
      }
    }
  }
  EXPECT_GT(local_seen, 10);
}

TEST_F(TriageTest, ConnectionsThatEndOrAreOddLeaveNoRecord) {
  // A reset or a FIN before any request: the stack ends the connection, tc forgets it.
  handshake(45000);
  test::Segment rst = client_ack(45000, {});
  rst.flags = tcp_flag::kRst;
  EXPECT_EQ(ingress(test::build(rst)).retval, TC_ACT_OK);
  EXPECT_FALSE(triage_entry(key_of(45000)));
  handshake(45001);
  test::Segment fin = client_ack(45001, {});
  fin.flags = tcp_flag::kAck | tcp_flag::kFin;
  EXPECT_EQ(ingress(test::build(fin)).retval, TC_ACT_OK);
  EXPECT_FALSE(triage_entry(key_of(45001)));
  // A SYN with data (TCP Fast Open) goes to batond as before.
  test::Segment tfo = test::client_syn(kIsn, 5);
  tfo.sport = 45002;
  tfo.payload = test::as_bytes("GET / HTTP/1.1\r\n\r\n");
  EXPECT_EQ(ingress(test::build(tfo)).mark & BATON_SLOW_MARK, BATON_SLOW_MARK);
  EXPECT_FALSE(triage_entry(key_of(45002)));
  // An ACK that does not answer the SYN/ACK tc saw is the stack's to judge.
  test::Segment syn = test::client_syn(kIsn, 5);
  syn.sport = 45003;
  ingress(test::build(syn));
  test::Segment sa = test::server_synack(kService, kIsn1, kIsn, 4242, 5, 7);
  sa.dport = 45003;
  egress(test::build(sa));
  test::Segment odd = client_ack(45003, {});
  odd.ack = kIsn1 + 77;
  EXPECT_EQ(ingress(test::build(odd)).retval, TC_ACT_OK);
}

TEST_F(TriageTest, SwitchedOffSynsGoToBatondAsBefore) {
  set_triage(0);
  test::Segment syn = test::client_syn(kIsn, 5);
  syn.sport = 46000;
  EXPECT_EQ(ingress(test::build(syn)).mark & BATON_SLOW_MARK, BATON_SLOW_MARK);
  EXPECT_FALSE(triage_entry(key_of(46000)));
}

}  // namespace
}  // namespace baton
