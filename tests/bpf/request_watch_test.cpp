// Request watching (bpf/baton_abi.h, baton_fe_flow.watch_node): tc looks at the segment that starts a
// handed-off connection's next request. A whole request without a body, for content the serving node
// holds, goes on and tc moves the boundary past it; anything else closes the gate at that segment (counted
// and tagged for batond), and the gate reopens only once batond released everything and said where the
// next request starts.
#include "tests/bpf/bpf_fixture.hpp"

namespace baton {
namespace {

using namespace bpftest;  // NOLINT(google-build-using-namespace): the fixture's vocabulary

constexpr NodeId kServing = 2;           // node 1 (the programs) handed the flow off to node 2
constexpr uint32_t kNext = 0xfffffff0;   // the next request starts here (and wraps inside it)
constexpr uint32_t kNode3 = 0x0a000003;  // 10.0.0.3
constexpr uint32_t kCounted = BATON_SLOW_MARK | BATON_COUNTED_MARK;
constexpr uint32_t kGateCount = 5;  // packets batond had before the gate opened

class RequestWatchTest : public BpfProgTest {
 protected:
  void SetUp() override {
    BpfProgTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    ContentMap map;
    map.add({"/n1/", {1}});
    map.add({"/n2/", {2}});
    map.add({"/n3/", {3}});
    map.add({"/shared/", {3, 2}});
    map.add({"/n2/" + std::string(BATON_PATH_MAX, 'x') + "/n3/", {3}});  // cut to fit: unsure
    map.set_default({});
    load_content(map, 1);
    set_runtime(BATON_RT_WATCH, 1);
    xlate_.frontend_addr = kService;
    xlate_.backend_addr = kOtherNode;
    xlate_.isn1 = 5000;
    xlate_.isn2 = 9000;
    reset_flow();
  }
  // The flow as tc has it once the gate opened: watching from kNext for node 2.
  void reset_flow() {
    seed_frontend(key(), kGateCount);
    seed_handoff(key(), kGateCount, xlate_, kNext, kServing);
    ASSERT_EQ(ingress(segment(kNext - 100, {})).retval, TC_ACT_REDIRECT) << "the gate opens";
    ASSERT_EQ(frontend_entry(key()).next_request, kNext);
  }
  void TearDown() override {
    if (progs_) {
      set_runtime(BATON_RT_WATCH, 0);
      clear_content();
    }
    BpfProgTest::TearDown();
  }
  static FlowKey key() { return FlowKey{test::kClient, kService, 42000, 80}; }
  static Bytes segment(uint32_t seq, const std::string& payload) {
    test::Segment s;
    s.sport = key().sport;
    s.seq = seq;
    s.ack = 6000;
    s.timestamps = {{100, 200}};
    s.payload = test::as_bytes(payload);
    return test::build(s);
  }
  static std::string get(const std::string& path, const std::string& headers = "Host: x\r\n") {
    return "GET " + path + " HTTP/1.1\r\n" + headers + "\r\n";
  }
  // Sends `request` at the boundary: true when tc sent it on itself (and moved the boundary past it).
  bool kernel_sends_on(const std::string& request) {
    reset_flow();
    const uint64_t kernel_before = counter(BATON_CNT_FE_REQUEST_KERNEL);
    RunResult r = ingress(segment(kNext, request));
    const baton_fe_flow f = frontend_entry(key());
    if (r.retval == TC_ACT_REDIRECT) {
      EXPECT_EQ(r.mark, 0u) << request;
      EXPECT_EQ(f.next_request, kNext + static_cast<uint32_t>(request.size())) << request;
      EXPECT_EQ(f.gate, kGateCount | BATON_GATE_OPEN) << request;
      EXPECT_EQ(counter(BATON_CNT_FE_REQUEST_KERNEL), kernel_before + 1) << request;
      return true;
    }
    EXPECT_EQ(r.retval, TC_ACT_OK) << request;
    EXPECT_EQ(r.mark, kCounted | BATON_BOUNDARY_MARK) << request;
    EXPECT_EQ(f.gate, kGateCount + 1) << request << ": closed, this segment counted";
    EXPECT_EQ(f.next_request, kNext) << request;
    return false;
  }

  Translation xlate_;
};

TEST_F(RequestWatchTest, ARequestForTheServingNodesContentGoesOnWithoutUserSpace) {
  const std::string first = get("/n2/a.txt");
  EXPECT_TRUE(kernel_sends_on(first));
  // ... and the one after it is looked at where it starts.
  const std::string second = get("/shared/b.bin", "Host: x\r\nUser-Agent: t\r\nAccept: */*\r\n");
  const auto after_first = kNext + static_cast<uint32_t>(first.size());
  const auto after_second = after_first + static_cast<uint32_t>(second.size());
  RunResult r = ingress(segment(after_first, second));
  EXPECT_EQ(r.retval, TC_ACT_REDIRECT);
  EXPECT_EQ(frontend_entry(key()).next_request, after_second);
  // Acknowledgements and retransmissions before the boundary are not requests.
  EXPECT_EQ(ingress(segment(kNext + 3, "")).retval, TC_ACT_REDIRECT);
  EXPECT_EQ(ingress(segment(kNext, first)).retval, TC_ACT_REDIRECT);
  EXPECT_EQ(frontend_entry(key()).next_request, after_second);
}

TEST_F(RequestWatchTest, WhatTheServingNodeMayNotServeOrTheKernelCannotTellGoesToBatond) {
  const std::vector<std::string> to_batond = {
      get("/n3/a.txt"),                                          // another node's content
      get("/n1/a.txt"),                                          // the front end's own
      get("/zzz"),                                               // no holder configured
      get("/n2/" + std::string(BATON_PATH_MAX, 'x') + "/n3/a"),  // the map is unsure
      "POST /n2/form HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
      "POST /n2/form HTTP/1.1\r\ncontent-length: 0\r\n\r\n",  // a body of 0 bytes: batond can tell
      "POST /n2/up HTTP/1.1\r\nTRANSFER-ENCODING: chunked\r\n\r\n",
      get("/n2/a.txt") + get("/n2/b.txt"),      // pipelined: the second starts inside the segment
      "GET /n2/a.txt HTTP/1.1\r\nHost: x\r\n",  // the head goes on in the next segment
      "GET /n2/a.txt HTTP/1.1\r\n",
      "GET http://x/n2/a.txt HTTP/1.1\r\n\r\n",  // absolute form
      "XYZ",
      get("/n2/" + std::string(300, 'y')),  // a request line longer than tc reads
  };
  for (const auto& req : to_batond) {
    EXPECT_FALSE(kernel_sends_on(req)) << req;
  }
  const std::vector<std::string> sent_on = {
      get("/n2/a.txt", ""),  // no header at all
      "GET /n2/a.txt HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
      get("/n2/a.txt", "X-Content-Length: 5\r\nContent-Type: text/plain\r\n"),  // names that only look alike
      "HEAD /shared/x HTTP/1.1\nHost: x\n\n",                                   // bare line feeds
      get("/n2/a?q=Content-Length:%205"),
      get("/n2/" + std::string(200, 'y')),                        // a long path: matched by its first bytes
      get("/n2/a", "Cookie: " + std::string(700, 'c') + "\r\n"),  // a long head
  };
  for (const auto& req : sent_on) {
    EXPECT_TRUE(kernel_sends_on(req)) << req;
  }
}

TEST_F(RequestWatchTest, TheGateReopensOnlyWhenBatondReleasedEverythingAndSaysWhereTheNextRequestStarts) {
  const uint64_t slow_before = counter(BATON_CNT_FE_REQUEST_SLOW);
  EXPECT_FALSE(kernel_sends_on(get("/n3/a.txt")));
  EXPECT_EQ(counter(BATON_CNT_FE_REQUEST_SLOW), slow_before + 1);
  // An acknowledgement behind it queues up behind it, although batond released what it had before.
  EXPECT_EQ(ingress(segment(kNext, "")).mark, kCounted);
  EXPECT_EQ(frontend_entry(key()).gate, kGateCount + 2);
  // batond moved the flow to node 3 and gave both their verdicts: tc takes over with the new numbers.
  Translation moved = xlate_;
  moved.backend_addr = kNode3;
  const uint32_t after = kNext + static_cast<uint32_t>(get("/n3/a.txt").size());
  seed_handoff(key(), kGateCount + 1, moved, after, 3);
  EXPECT_EQ(ingress(segment(kNext, "")).mark, kCounted) << "one verdict still to come";
  seed_handoff(key(), kGateCount + 3, moved, after, 3);
  RunResult r = ingress(segment(after, get("/n3/b.txt")));
  EXPECT_EQ(r.retval, TC_ACT_REDIRECT) << "a request for node 3's content now stays";
  const baton_fe_flow f = frontend_entry(key());
  EXPECT_EQ(f.gate, (kGateCount + 3) | BATON_GATE_OPEN);
  EXPECT_EQ(f.watch_node, 3u);
  EXPECT_EQ(from_abi(f.xlate).backend_addr, kNode3);
  EXPECT_EQ(f.next_request, after + static_cast<uint32_t>(get("/n3/b.txt").size()));
}

TEST_F(RequestWatchTest, ABoundaryPassedUnseenEndsWatching) {
  const uint64_t lost_before = counter(BATON_CNT_FE_WATCH_LOST);
  // The segment starting the request was lost before tc: the next one is past the boundary.
  EXPECT_EQ(ingress(segment(kNext + 20, "Host: x\r\n\r\n")).retval, TC_ACT_REDIRECT);
  EXPECT_EQ(frontend_entry(key()).watch_node, BATON_WATCH_OFF);
  EXPECT_EQ(counter(BATON_CNT_FE_WATCH_LOST), lost_before + 1);
  // From now on everything goes on, whatever it asks for.
  EXPECT_EQ(ingress(segment(kNext, get("/n3/a.txt"))).retval, TC_ACT_REDIRECT);
  // A segment across the boundary (a retransmission merged with new bytes) ends it too.
  reset_flow();
  EXPECT_EQ(ingress(segment(kNext - 4, "\r\n\r\n" + get("/n3/a.txt"))).retval, TC_ACT_REDIRECT);
  EXPECT_EQ(frontend_entry(key()).watch_node, BATON_WATCH_OFF);
}

TEST_F(RequestWatchTest, WithoutBatondNothingIsHeldBack) {
  // batond stopped (or detached the programs): nobody would decide, so tc does not look.
  set_runtime(BATON_RT_WATCH, 0);
  EXPECT_EQ(ingress(segment(kNext, get("/n3/a.txt"))).retval, TC_ACT_REDIRECT);
  const baton_fe_flow f = frontend_entry(key());
  EXPECT_EQ(f.gate, kGateCount | BATON_GATE_OPEN);
  EXPECT_EQ(f.watch_node, kServing) << "watching resumes when batond is back";
}

}  // namespace
}  // namespace baton
