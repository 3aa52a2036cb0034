#include <gtest/gtest.h>

#include "core/protocol.hpp"

namespace baton::proto {
namespace {

std::vector<Message> samples() {
  Hello h;
  h.node_id = 7;
  h.nonce[0] = 1;
  h.nonce[15] = 0xff;
  Hello h2 = h;
  h2.workers = 4;
  h2.worker = 3;
  Auth a;
  a.mac[31] = 9;
  HandoffRequest r;
  r.flow = {0x0a000064, 0x0a000001, 40000, 80};
  r.isn1 = 0xdeadbeef;
  r.granted_options = granted::kTimestamps | granted::kSack;
  r.frontend_wscale = 7;
  r.frontend_mss = 1460;
  r.syn = {1, 2, 3};
  r.ack = {4, 5};
  r.request = Bytes(5000, 'x');
  HandoffAck ack;
  ack.flow = r.flow;
  ack.isn2 = 42;
  ack.ts_base = 43;
  ack.backend_wscale = 9;
  HandoffAck refused;
  refused.flow = r.flow;
  refused.refusal = Refusal::kNoListener;
  return {h,
          h2,
          a,
          r,
          ack,
          refused,
          FlowClosed{r.flow, CloseReason::kReset},
          Heartbeat{12},
          Heartbeat{0, true},
          Drain{3, true},
          Drain{2, false},
          Restarted{true},
          Restarted{false},
          Quiesce{FlowKey{1, 2, 3, 4}, false},
          Quiesce{FlowKey{1, 2, 3, 4}, true},
          Quiesced{FlowKey{1, 2, 3, 4}, true, 0xfffffff0, 17},
          Quiesced{FlowKey{5, 6, 7, 8}, false, 0, 0},
          FlowClosed{FlowKey{1, 2, 3, 4}, CloseReason::kMigrated}};
}

TEST(Protocol, RoundTripEveryMessage) {
  for (const auto& m : samples()) {
    Decoder d;
    d.feed(encode(m));
    auto got = d.next();
    ASSERT_TRUE(got) << got.error();
    ASSERT_TRUE(got->has_value());
    EXPECT_TRUE(**got == m);
    EXPECT_EQ(d.buffered(), 0u);
  }
}

TEST(Protocol, StreamSplitAtEveryByte) {
  Bytes stream;
  for (const auto& m : samples()) {
    Bytes e = encode(m);
    stream.insert(stream.end(), e.begin(), e.end());
  }
  Decoder d;
  size_t count = 0;
  for (uint8_t byte : stream) {
    d.feed(ByteView(&byte, 1));
    for (;;) {
      auto got = d.next();
      ASSERT_TRUE(got) << got.error();
      if (!got->has_value()) break;
      EXPECT_TRUE(**got == samples()[count]);
      ++count;
    }
  }
  EXPECT_EQ(count, samples().size());
}

TEST(Protocol, CorruptFramesAreErrors) {
  const Bytes good = encode(Heartbeat{1});
  auto fails = [](const Bytes& b) {
    Decoder d;
    d.feed(b);
    return !d.next();
  };
  Bytes huge = good;
  store32(huge, 0, kMaxFrame + 1);
  EXPECT_TRUE(fails(huge));
  Bytes version = good;
  version[4] = 99;
  EXPECT_TRUE(fails(version));
  auto other_version = decode_body(ByteView(version).subspan(4));
  ASSERT_FALSE(other_version);
  EXPECT_EQ(other_version.error(), "protocol version 99 (this node speaks " + std::to_string(kVersion) + ")");
  Bytes type = good;
  type[5] = 0;
  EXPECT_TRUE(fails(type));
  // A boolean byte other than 0 or 1, named.
  Bytes flag = encode(Heartbeat{1, true});
  flag.back() = 2;
  auto bad = decode_body(ByteView(flag).subspan(4));
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error(), "bad draining flag");
  Bytes quiesce = encode(Quiesce{FlowKey{1, 2, 3, 4}, false});
  quiesce.back() = 7;
  EXPECT_TRUE(fails(quiesce));
  Bytes truncated = good;  // length says 5 body bytes, the heartbeat needs 6
  truncated.pop_back();
  store32(truncated, 0, static_cast<uint32_t>(truncated.size() - 4));
  EXPECT_TRUE(fails(truncated));
  Bytes tiny{0, 0, 0, 1, kVersion};
  EXPECT_TRUE(fails(tiny));
  // A byte-string length larger than the frame must not read past it.
  HandoffRequest r;
  r.syn = {1};
  Bytes b = encode(r);
  store32(b, 4 + 2 + 12 + 8, 0xffffff00);
  EXPECT_TRUE(fails(b));
}

// What a newer node of the same version may send: fields appended to a message, messages of new types.
TEST(Protocol, NewerAdditionsAreIgnored) {
  Bytes longer = encode(Heartbeat{7, true});
  longer.insert(longer.end(), {1, 2, 3});
  store32(longer, 0, static_cast<uint32_t>(longer.size() - 4));
  Bytes unknown = encode(Heartbeat{1});
  unknown[5] = static_cast<uint8_t>(kLastType) + 1;
  unknown.push_back(9);
  store32(unknown, 0, static_cast<uint32_t>(unknown.size() - 4));
  Decoder d;
  d.feed(unknown);
  d.feed(longer);
  d.feed(unknown);
  auto m = d.next();
  ASSERT_TRUE(m && m->has_value());
  EXPECT_EQ(std::get<Heartbeat>(**m), (Heartbeat{7, true}));
  auto end = d.next();
  ASSERT_TRUE(end);
  EXPECT_FALSE(end->has_value());
  EXPECT_EQ(d.skipped(), 2U);
  EXPECT_EQ(d.buffered(), 0U);
}

// A HELLO from a build before workers (node id and nonce only) is worker 0 of 1.
TEST(Protocol, AHelloWithoutWorkersIsTheOnlyWorker) {
  Hello h;
  h.node_id = 5;
  h.workers = 2;
  h.worker = 1;
  Bytes b = encode(h);
  b.resize(b.size() - 2);
  store32(b, 0, static_cast<uint32_t>(b.size() - 4));
  Decoder d;
  d.feed(b);
  auto m = d.next();
  ASSERT_TRUE(m && m->has_value());
  const auto& got = std::get<Hello>(**m);
  EXPECT_EQ(got.node_id, 5U);
  EXPECT_EQ(got.workers, 1);
  EXPECT_EQ(got.worker, 0);
}

TEST(Protocol, UnknownEnumValuesAreErrors) {
  Bytes b = encode(FlowClosed{{}, CloseReason::kFin});
  b.back() = 77;
  Decoder d;
  d.feed(b);
  EXPECT_FALSE(d.next());
}

}  // namespace
}  // namespace baton::proto
