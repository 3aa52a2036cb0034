#include <gtest/gtest.h>

#include "daemon/config.hpp"

namespace baton {
namespace {

const std::string kGood = R"(
node_id = 1
secret = "0123456789abcdef"
[[nodes]]
id = 1
service_address = "10.0.0.1"
control_address = "10.0.1.1:7000"
[[nodes]]
id = 2
service_address = "10.0.0.2"
control_address = "10.0.1.2"
[content]
default = [1]
[[content.rules]]
prefix = "/two/"
nodes = [2]
[timeouts]
hold_ms = 100
)";

TEST(Config, ParsesAGoodFile) {
  auto c = parse_config(kGood, "good.toml");
  ASSERT_TRUE(c) << c.error();
  EXPECT_EQ(c->node_id, 1u);
  EXPECT_EQ(c->service_port, 80);
  EXPECT_EQ(c->nodes.size(), 2u);
  EXPECT_EQ(c->self().control_port, 7000);
  EXPECT_EQ(c->node(2)->control_port, 7700);
  EXPECT_EQ(c->node(2)->service_addr, 0x0a000002u);
  EXPECT_EQ(c->content.lookup("/two/x"), std::vector<NodeId>{2});
  EXPECT_EQ(c->content.lookup("/else"), std::vector<NodeId>{1});
  EXPECT_EQ(c->hold_timeout_ms, 100u);
  EXPECT_EQ(c->handoff_timeout_ms, 2000u);
}

// Each bad variant must fail with a message that names what is wrong.
TEST(Config, BadFilesGetClearErrors) {
  auto replace = [](std::string s, const std::string& from, const std::string& to) {
    auto at = s.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    return s.replace(at, from.size(), to);
  };
  struct Case {
    std::string text;
    std::string expect;
  } cases[] = {
      {replace(kGood, "node_id = 1", "node_id = 9"), "node_id 9 is not among [[nodes]]"},
      {replace(kGood, "node_id = 1", ""), "missing required key 'node_id'"},
      {replace(kGood, "\"10.0.0.2\"", "\"10.0.0.300\""), "nodes[1].service_address"},
      {replace(kGood, "10.0.1.1:7000", "10.0.1.1:99999"), "bad port"},
      {replace(kGood, "id = 2", "id = 1"), "listed twice"},
      {replace(kGood, "nodes = [2]", "nodes = [7]"), "unknown node 7"},
      {replace(kGood, "nodes = [2]", "nodes = []"), "at least one node"},
      {replace(kGood, "prefix = \"/two/\"", "prefix = \"two\""), "must start with '/'"},
      {replace(kGood, "\"0123456789abcdef\"", "\"short\""), "at least 16 characters"},
      {replace(kGood, "hold_ms = 100", "hold_ms = -1"), "timeouts.hold_ms"},
      {replace(kGood, "hold_ms = 100", "hold_ms = \"soon\""), "wrong type"},
      {replace(kGood, "hold_ms = 100", "heartbeat_ms = 500"),
       "peer_down_ms must be at least 2 x timeouts.heartbeat_ms + 200 (1200)"},
      {replace(kGood, "hold_ms = 100", "peer_stall_ms = 100"),
       "peer_stall_ms must be 0 (off) or from timeouts.heartbeat_ms + 50 (250) to below "
       "timeouts.peer_down_ms (900)"},
      {replace(kGood, "hold_ms = 100", "peer_stall_ms = 900"), "to below timeouts.peer_down_ms (900)"},
      {"sevrice_port = 8080\n" + kGood, "unknown key 'sevrice_port'"},
      {kGood + "linger = 5\n", "unknown key 'timeouts.linger'"},
      {"datapath = \"dpdk\"\n" + kGood, "'dpdk' is not available"},
      {"node_id = [", "bad.toml:1"},
      {replace(kGood, "nodes = [2]", "nodes = [2]\npolicy = \"lrad\""), "unknown policy 'lrad'"},
      {replace(kGood, "default = [1]", "default = [1]\npolicy = 3"), "content.policy' has the wrong type"},
      {kGood + "[dispatch]\nlard_low = 70\n", "lard_low must be below dispatch.lard_high"},
      {kGood + "[dispatch]\nhash_key = \"header\"\n", "not path, host or cookie:NAME"},
      {kGood + "[dispatch]\nhash_balance = 0\n", "dispatch.hash_balance"},
      {kGood + "[dispatch]\nlard = 1\n", "unknown key 'dispatch.lard'"},
      {replace(kGood, "id = 2", "id = 2\ncapacity = 0"), "nodes[1].capacity"},
      {"metrics_listen = \"0.0.0.0\"\n" + kGood, "needs a port (ADDR:PORT"},
      {"metrics_listen = \"any:9470\"\n" + kGood, "'metrics_listen': 'any' is not an IPv4 address"},
      {"metrics_listen = \"0.0.0.0:0\"\n" + kGood, "metrics_listen: bad port '0'"},
      {"datapath = \"nfqueue\"\nworkers = 3\n" + kGood, "'workers' must be a power of two"},
      {"datapath = \"nfqueue\"\nworkers = 128\n" + kGood, "workers"},
      {"datapath = \"nfqueue\"\nworkers = 4\nqueue_num = 65534\n" + kGood, "past 65535"},
      {"datapath = \"nfqueue\"\nworkers = 2\n" + replace(kGood, "10.0.1.1:7000", "10.0.1.1:65535"),
       "node 1's control port 65535"},
  };
  for (const auto& c : cases) {
    auto r = parse_config(c.text, "bad.toml");
    ASSERT_FALSE(r) << c.expect;
    EXPECT_NE(r.error().find(c.expect), std::string::npos) << "got: " << r.error();
    EXPECT_EQ(r.error().rfind("bad.toml", 0), 0u) << "errors name the file: " << r.error();
  }
}

TEST(Config, PoliciesPerRuleWithTheDefaultFromTheContentSection) {
  std::string text = kGood;
  text.replace(text.find("default = [1]"), 13, "policy = \"lard\"");
  text.replace(text.find("id = 2"), 6, "id = 2\ncapacity = 3");
  text += "[[content.rules]]\nprefix = \"/static/\"\npolicy = \"content\"\nnodes = [1]\n";
  text += "[dispatch]\nlard_high = 80\nhash_key = \"cookie:sid\"\nhash_balance = 0.5\n";
  auto c = parse_config(text, "good.toml");
  ASSERT_TRUE(c) << c.error();
  EXPECT_EQ(c->content.rule_for("/else").policy, Policy::kLard);
  EXPECT_TRUE(c->content.lookup("/else").empty()) << "no nodes named: every node may serve";
  EXPECT_EQ(c->content.rule_for("/two/x").policy, Policy::kLard) << "rules inherit content.policy";
  EXPECT_EQ(c->content.rule_for("/static/x").policy, Policy::kContent);
  EXPECT_EQ(c->dispatch.lard_high, 80u);
  EXPECT_EQ(c->dispatch.lard_low, 25u);
  EXPECT_EQ(c->dispatch.hash_key.cookie, "sid");
  EXPECT_DOUBLE_EQ(c->dispatch.hash_balance, 0.5);
  EXPECT_EQ(c->dispatch.nodes, (std::vector<NodeId>{1, 2}));
  EXPECT_EQ(c->dispatch.capacity.at(2), 3u);
  EXPECT_EQ(c->dispatch.capacity.at(1), 1u);
}

TEST(Config, AReloadMayNotChangeWhatNeedsARestart) {
  auto running = parse_config(kGood, "a.toml");
  ASSERT_TRUE(running) << running.error();
  auto next = [](const std::string& text) {
    auto c = parse_config(text, "b.toml");
    EXPECT_TRUE(c) << c.error();
    return *c;
  };
  std::string moved = kGood;
  moved.replace(moved.find("nodes = [2]"), 11, "nodes = [1, 2]");
  EXPECT_EQ(reload_refusal(*running, next(moved)), "") << "the content map may change";
  EXPECT_EQ(reload_refusal(*running, next("service_port = 8080\n" + kGood)),
            "service_port cannot change at reload (80 running, 8080 in the file): restart batond");
  EXPECT_NE(reload_refusal(*running, next("max_flows = 1024\n" + kGood)).find("max_flows"),
            std::string::npos);
  std::string addr = kGood;
  addr.replace(addr.find("10.0.1.1:7000"), 13, "10.0.1.9:7000");
  EXPECT_NE(reload_refusal(*running, next(addr)).find("control_address"), std::string::npos);
  EXPECT_EQ(
      reload_refusal(*running, next("metrics_listen = \"10.0.0.1:9470\"\n" + kGood)),
      "metrics_listen cannot change at reload (none running, 10.0.0.1:9470 in the file): restart batond");
}

TEST(Config, Workers) {
  auto one = parse_config(kGood, "good.toml");
  ASSERT_TRUE(one) << one.error();
  EXPECT_EQ(one->workers, 1u);
  auto four = parse_config("datapath = \"nfqueue\"\nworkers = 4\n" + kGood, "good.toml");
  ASSERT_TRUE(four) << four.error();
  EXPECT_EQ(four->workers, 4u);
  auto nfq = parse_config("datapath = \"nfqueue\"\n" + kGood, "good.toml");
  ASSERT_TRUE(nfq) << nfq.error();
  EXPECT_EQ(reload_refusal(*nfq, *four),
            "workers cannot change at reload (1 running, 4 in the file): restart batond");
}

TEST(Config, PeerStall) {
  auto c = parse_config(kGood, "good.toml");
  ASSERT_TRUE(c) << c.error();
  EXPECT_EQ(c->peer_stall_ms, 250u);
  auto off = parse_config(kGood + "peer_stall_ms = 0\n", "good.toml");
  ASSERT_TRUE(off) << off.error();
  EXPECT_EQ(off->peer_stall_ms, 0u);
  auto longer = parse_config(kGood + "peer_stall_ms = 400\n", "good.toml");
  ASSERT_TRUE(longer) << longer.error();
  EXPECT_EQ(longer->peer_stall_ms, 400u);
}

TEST(Config, MetricsListen) {
  auto c = parse_config("metrics_listen = \"10.0.0.1:9470\"\n" + kGood, "good.toml");
  ASSERT_TRUE(c) << c.error();
  EXPECT_EQ(c->metrics_addr, 0x0a000001u);
  EXPECT_EQ(c->metrics_port, 9470);
  auto off = parse_config(kGood, "good.toml");
  EXPECT_EQ(off->metrics_port, 0) << "no endpoint unless asked for";
}

TEST(Config, MissingFile) {
  auto r = load_config("/nonexistent/batond.toml");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().find("cannot open"), std::string::npos);
}

}  // namespace
}  // namespace baton
