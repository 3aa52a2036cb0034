#include "daemon/worker_status.hpp"

#include <gtest/gtest.h>

namespace baton {
namespace {

nlohmann::json worker(uint64_t handed_off, uint64_t accepted, uint64_t live, bool peer_up,
                      const std::string& error = "") {
  nlohmann::json latency{{"bounds", {1, 2}}, {"counts", {1, handed_off}}, {"sum", 3}, {"count", 4}};
  nlohmann::json peer{{"id", 2}, {"connected", peer_up}, {"rtt_us", 50}, {"last_error", error}};
  nlohmann::json w;
  w["node_id"] = 1;
  w["load"] = 7;
  w["live_flows"] = live;
  w["frontend"] = {{"handed_off", handed_off}, {"served_locally", 1}, {"handoff_latency_ms", latency}};
  w["backend"] = {{"handoffs_accepted", accepted}};
  w["control"] = {{"messages_unsent", 1}, {"peers", nlohmann::json::array({peer})}};
  return w;
}

TEST(WorkerStatus, OneWorkerIsItsOwnStatus) {
  const auto w = worker(3, 4, 5, true);
  auto merged = merge_worker_status({w});
  EXPECT_EQ(merged["workers"], 1);
  merged.erase("workers");
  EXPECT_EQ(merged, w);
}

TEST(WorkerStatus, CountersAreSummedAndTheNodeIsDescribedOnce) {
  const auto m = merge_worker_status(
      {worker(3, 4, 5, true), worker(10, 20, 1, false, "refused"), worker(1, 1, 1, true)});
  EXPECT_EQ(m["workers"], 3);
  EXPECT_EQ(m["frontend"]["handed_off"], 14);
  EXPECT_EQ(m["frontend"]["served_locally"], 3);
  EXPECT_EQ(m["backend"]["handoffs_accepted"], 25);
  EXPECT_EQ(m["live_flows"], 7);
  EXPECT_EQ(m["load"], 7) << "the node's load is one for every worker (worker 0 measures it)";
  EXPECT_EQ(m["frontend"]["handoff_latency_ms"]["bounds"], (nlohmann::json{1, 2}));
  EXPECT_EQ(m["frontend"]["handoff_latency_ms"]["counts"], (nlohmann::json{3, 14}));
  EXPECT_EQ(m["frontend"]["handoff_latency_ms"]["count"], 12);
  EXPECT_EQ(m["control"]["messages_unsent"], 3);
  EXPECT_EQ(m["control"]["peers"][0]["connected"], false) << "a peer is up when every worker reaches it";
  EXPECT_EQ(m["control"]["peers"][0]["last_error"], "refused");
  ASSERT_EQ(m["per_worker"].size(), 3U);
  EXPECT_EQ(m["per_worker"][1]["handed_off"], 10);
  EXPECT_EQ(m["per_worker"][1]["handoffs_accepted"], 20);
  EXPECT_EQ(m["per_worker"][1]["peers_up"], 0);
  EXPECT_EQ(m["per_worker"][2]["peers_up"], 1);
  EXPECT_EQ(m["per_worker"][2]["load"], 7) << "each worker's view of the node's load";
}

TEST(WorkerStatus, FlowsOfEveryWorker) {
  const auto all = merge_worker_flows({nlohmann::json::array({{{"client", "a"}}}), nlohmann::json::array(),
                                       nlohmann::json::array({{{"client", "b"}}, {{"client", "c"}}})});
  ASSERT_EQ(all.size(), 3U);
  EXPECT_EQ(all[2]["client"], "c");
  EXPECT_EQ(all[2]["worker"], 2);
  EXPECT_EQ(all[0]["worker"], 0);
}

}  // namespace
}  // namespace baton
