#include "core/flow_sweep.hpp"

#include <gtest/gtest.h>

#include <map>
#include <string>

namespace baton {
namespace {

struct Flow {
  bool short_lived = false;
  int visits = 0;
};

class FlowSweepTest : public ::testing::Test {
 protected:
  void run(uint64_t now_ms) {
    sweep.run(
        flows, now_ms, [](const Flow& f) { return f.short_lived; },
        [](std::map<int, Flow>::iterator it) {
          ++it->second.visits;
          return std::next(it);
        });
  }
  std::map<int, Flow> flows;
  FlowSweep<int, std::hash<int>> sweep;
};

TEST_F(FlowSweepTest, ShortLivedFlowsEveryCallTheRestOnceASecond) {
  flows[1] = {false, 0};  // idle
  run(0);                 // the first call sweeps everything
  EXPECT_EQ(flows[1].visits, 1);
  flows[2] = {true, 0};  // a handshake starts, noted
  sweep.note(2);
  for (uint64_t t = 20; t < 1000; t += 20)
    run(t);
  EXPECT_EQ(flows[1].visits, 1) << "idle flows wait for the next full sweep";
  EXPECT_EQ(flows[2].visits, 49) << "every call";
  flows[2].short_lived = false;  // it settled: dropped from the short list at the next call
  run(990);
  EXPECT_EQ(flows[2].visits, 49);
  run(1000);
  EXPECT_EQ(flows[1].visits, 2);
  EXPECT_EQ(flows[2].visits, 50);
}

TEST_F(FlowSweepTest, AFlowNobodyNotedIsStillLookedAtWithinASecond) {
  run(0);
  flows[7] = {true, 0};  // short-lived, but not noted
  run(500);
  EXPECT_EQ(flows[7].visits, 0);
  run(1000);
  EXPECT_EQ(flows[7].visits, 1);
  run(1020);
  EXPECT_EQ(flows[7].visits, 2) << "found by the full sweep, on the short list since";
}

TEST_F(FlowSweepTest, FlowsGoneMeanwhileAreSkipped) {
  run(0);
  flows[3] = {true, 0};
  sweep.note(3);
  sweep.note(4);  // noted, never created
  flows.erase(3);
  run(20);
  EXPECT_TRUE(flows.empty());
}

}  // namespace
}  // namespace baton
