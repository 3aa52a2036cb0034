#include <gtest/gtest.h>

#include <map>
#include <set>

#include "core/dispatch.hpp"

namespace baton {
namespace {

struct Peers {
  std::set<NodeId> up{1, 2, 3};
  std::map<NodeId, uint32_t> load;
  PeerView view() {
    return {[this](NodeId n) { return up.count(n) != 0; }, [this](NodeId n) { return load[n]; }};
  }
};

ContentMap sample_map() {
  ContentMap m;
  m.add({"/a/", {1}});
  m.add({"/b/", {2}});
  m.add({"/shared/", {2, 3}});
  m.add({"/b/deep/", {3}});
  m.set_default({1});
  return m;
}

TEST(Dispatch, LongestPrefixWins) {
  ContentMap m = sample_map();
  EXPECT_EQ(m.lookup("/b/deep/x"), std::vector<NodeId>{3});
  EXPECT_EQ(m.lookup("/b/x"), std::vector<NodeId>{2});
  EXPECT_EQ(m.lookup("/nowhere"), std::vector<NodeId>{1});
}

TEST(Dispatch, LocalContentStaysLocal) {
  Peers p;
  EXPECT_EQ(choose_node(sample_map(), "/a/x", 1, p.view()).node, 1u);
  EXPECT_EQ(choose_node(sample_map(), "/shared/x", 3, p.view()).node, 3u);
}

TEST(Dispatch, RemoteContentGoesToLeastLoadedReachableHolder) {
  Peers p;
  EXPECT_EQ(choose_node(sample_map(), "/shared/x", 1, p.view()).node, 2u);  // tie: map order, turn 0
  EXPECT_EQ(choose_node(sample_map(), "/shared/x", 1, p.view(), 1).node, 3u) << "ties taken in turn";
  EXPECT_EQ(choose_node(sample_map(), "/shared/x", 1, p.view(), 2).node, 2u);
  p.load[2] = 5;
  EXPECT_EQ(choose_node(sample_map(), "/shared/x", 1, p.view()).node, 3u);
  p.up.erase(3);
  EXPECT_FALSE(choose_node(sample_map(), "/shared/x", 1, p.view()).unavailable);
  EXPECT_EQ(choose_node(sample_map(), "/shared/x", 1, p.view()).node, 2u);
  p.up.erase(2);
  const Decision nobody = choose_node(sample_map(), "/shared/x", 1, p.view());
  EXPECT_EQ(nobody.node, 1u);  // answered here: that it is unavailable
  EXPECT_TRUE(nobody.unavailable);
  // Content held here is never unavailable here.
  EXPECT_FALSE(choose_node(sample_map(), "/a/x", 1, p.view()).unavailable);
}

TEST(Dispatch, UnknownPathGoesToDefault) {
  Peers p;
  ContentMap m = sample_map();
  m.set_default({2});
  EXPECT_EQ(choose_node(m, "/unknown", 1, p.view()).node, 2u);
}

}  // namespace
}  // namespace baton

namespace baton {
namespace {

// A cluster of nodes 1..3 as a front end (node 1) sees it: reachability, reported loads, and how many
// reports came (none: the dispatcher adds its own choices on top of a report until the next one).
struct Cluster {
  std::set<NodeId> up{1, 2, 3};
  std::map<NodeId, uint32_t> load;
  std::map<NodeId, uint64_t> reports;
  PeerView view() {
    return {[this](NodeId n) { return up.count(n) != 0; }, [this](NodeId n) { return load[n]; },
            [this](NodeId n) { return reports[n]; }};
  }
  // A fresh report from every node: the loads as set, the dispatcher's own additions forgotten.
  void report() {
    for (NodeId n : {1u, 2u, 3u})
      ++reports[n];
  }
};

DispatchSettings three_nodes() {
  DispatchSettings s;
  s.nodes = {1, 2, 3};
  return s;
}

ContentMap one_policy(Policy p) {
  ContentMap m;
  m.set_default({}, p);
  return m;
}

NodeId pick(Dispatcher& d, Cluster& c, const std::string& path, uint64_t now = 0) {
  return d.choose({path, "", ""}, c.view(), now).node;
}

TEST(Lard, ATargetStaysOnItsNodeUntilThatNodeIsOverloadedWhileAnotherIsIdle) {
  ContentMap m = one_policy(Policy::kLard);
  Dispatcher d(m, three_nodes(), 1);
  Cluster c;
  const NodeId first = pick(d, c, "/hot");
  c.report();
  for (int i = 0; i < 20; ++i) {
    EXPECT_EQ(pick(d, c, "/hot"), first) << "locality: the target's node serves it";
    c.report();
  }
  // Over T_high (65) while another node is under T_low (25): the target moves to the least loaded.
  NodeId idle = first == 3 ? 2 : 3;
  for (NodeId n : {1u, 2u, 3u})
    c.load[n] = 40;
  c.load[first] = 66;
  c.load[idle] = 10;
  c.report();
  EXPECT_EQ(pick(d, c, "/hot"), idle);
  EXPECT_EQ(d.lard_servers("/hot"), std::vector<NodeId>{idle});
  // Busy but nobody idle: it stays where it is now, until twice T_high.
  c.load[idle] = 100;
  for (NodeId n : {1u, 2u, 3u})
    if (n != idle) c.load[n] = 30;
  c.report();
  EXPECT_EQ(pick(d, c, "/hot"), idle);
  c.load[idle] = 130;
  c.report();
  EXPECT_NE(pick(d, c, "/hot"), idle) << "at 2 x T_high it moves even with nobody idle";
}

TEST(Lard, FrontEndsThatSeeTheSameLoadsAssignATargetToTheSameNode) {
  ContentMap m = one_policy(Policy::kLard);
  Dispatcher a(m, three_nodes(), 1), b(m, three_nodes(), 2);
  Cluster c;
  std::set<NodeId> used;
  for (int i = 0; i < 30; ++i) {
    const std::string t = "/t" + std::to_string(i);
    const NodeId x = pick(a, c, t);
    EXPECT_EQ(pick(b, c, t), x) << t;
    used.insert(x);
    c.report();
  }
  EXPECT_EQ(used.size(), 3u) << "targets spread over the nodes";
}

TEST(Lard, AnUnreachableServerLosesItsTargets) {
  ContentMap m = one_policy(Policy::kLard);
  Dispatcher d(m, three_nodes(), 1);
  Cluster c;
  // A target whose node is a peer.
  std::string t;
  for (int i = 0; t.empty(); ++i) {
    std::string x = "/p" + std::to_string(i);
    if (pick(d, c, x) != 1) t = x;
  }
  const NodeId was = d.lard_servers(t).at(0);
  c.up.erase(was);
  const NodeId now = pick(d, c, t);
  EXPECT_NE(now, was);
  EXPECT_EQ(d.lard_servers(t), std::vector<NodeId>{now});
}

TEST(LardR, AHotTargetsServerSetGrowsUnderLoadAndShrinksWhenCalm) {
  ContentMap m = one_policy(Policy::kLardR);
  DispatchSettings s = three_nodes();
  s.lard_shrink_ms = 20'000;
  Dispatcher d(m, s, 1);
  Cluster c;
  const NodeId first = pick(d, c, "/hot", 0);
  c.load[first] = 70;  // over T_high, the others idle
  c.report();
  const NodeId second = pick(d, c, "/hot", 1'000);
  EXPECT_NE(second, first);
  EXPECT_EQ(d.lard_servers("/hot").size(), 2u) << "replicated, not moved";
  // Requests go to the less loaded of the set.
  c.load[second] = 30;
  c.load[first] = 50;
  c.report();
  EXPECT_EQ(pick(d, c, "/hot", 2'000), second);
  c.load[second] = 60;
  c.report();
  EXPECT_EQ(pick(d, c, "/hot", 3'000), first);
  // Unchanged for K (20 s): the most loaded leaves the set.
  c.load[first] = 10;
  c.load[second] = 20;
  c.report();
  EXPECT_EQ(pick(d, c, "/hot", 1'000 + 20'000), first);
  EXPECT_EQ(d.lard_servers("/hot"), std::vector<NodeId>{first});
}

TEST(Lard, RemembersAtMostItsTargetsTheLeastRecentGoingFirst) {
  ContentMap m = one_policy(Policy::kLard);
  DispatchSettings s = three_nodes();
  s.lard_targets = 2;
  Dispatcher d(m, s, 1);
  Cluster c;
  pick(d, c, "/a");
  pick(d, c, "/b");
  pick(d, c, "/a");
  pick(d, c, "/c");  // /b goes
  EXPECT_FALSE(d.lard_servers("/a").empty());
  EXPECT_TRUE(d.lard_servers("/b").empty());
  EXPECT_FALSE(d.lard_servers("/c").empty());
}

TEST(Hash, RemovingANodeMovesOnlyItsShare) {
  ContentMap m = one_policy(Policy::kHash);
  DispatchSettings s = three_nodes();
  s.hash_balance = 10;  // no load bound in the way
  Dispatcher d(m, s, 1);
  Cluster c;
  std::map<std::string, NodeId> before;
  std::map<NodeId, int> share;
  for (int i = 0; i < 300; ++i) {
    const std::string k = "/k" + std::to_string(i);
    before[k] = pick(d, c, k);
    ++share[before[k]];
    c.report();
  }
  for (NodeId n : {1u, 2u, 3u})
    EXPECT_GT(share[n], 60) << "node " << n << " gets about a third";
  c.up.erase(3);
  int moved = 0;
  for (const auto& [k, n] : before) {
    const NodeId now = pick(d, c, k);
    c.report();
    if (n != 3) {
      EXPECT_EQ(now, n) << k << " was not on the removed node";
    } else {
      EXPECT_NE(now, 3u);
      ++moved;
    }
  }
  EXPECT_EQ(moved, share[3]);
}

TEST(Hash, NoNodeTakesMoreThanItsBoundedShare) {
  ContentMap m = one_policy(Policy::kHash);
  DispatchSettings s = three_nodes();
  s.hash_balance = 0.25;
  Dispatcher d(m, s, 1);
  Cluster c;
  const NodeId home = pick(d, c, "/one-key");
  // 30 connections on the cluster, all on the key's node: its bound is ceil(1.25 x 31 / 3) = 13.
  c.load[home] = 30;
  c.report();
  EXPECT_NE(pick(d, c, "/one-key"), home);
  // Without reports, the dispatcher counts its own choices: a burst for one key spreads at the bound.
  Cluster fresh;
  Dispatcher e(m, s, 1);
  std::map<NodeId, int> got;
  for (int i = 0; i < 30; ++i)
    ++got[pick(e, fresh, "/one-key")];
  for (const auto& [n, k] : got)
    EXPECT_LE(k, 13) << "node " << n;
}

TEST(Hash, ByHostOrCookie) {
  ContentMap m = one_policy(Policy::kHash);
  DispatchSettings s = three_nodes();
  s.hash_balance = 10;
  s.hash_key = *parse_hash_key("cookie:session");
  Dispatcher d(m, s, 1);
  Cluster c;
  std::set<NodeId> nodes;
  for (int i = 0; i < 20; ++i) {
    RequestFacts r{"/p" + std::to_string(i), "", "a=1; session=alice; b=2"};
    nodes.insert(d.choose(r, c.view(), 0).node);
  }
  EXPECT_EQ(nodes.size(), 1u) << "one session, one node, whatever the path";
  EXPECT_EQ(parse_hash_key("host")->kind, HashKey::kHost);
  EXPECT_FALSE(parse_hash_key("cookie:"));
  EXPECT_FALSE(parse_hash_key("header"));
}

TEST(LeastConn, WeighsConnectionsByCapacity) {
  ContentMap m = one_policy(Policy::kLeastConn);
  DispatchSettings s = three_nodes();
  s.capacity = {{1, 1}, {2, 2}, {3, 1}};
  Dispatcher d(m, s, 1);
  Cluster c;  // never reports: the dispatcher's own count is the load
  std::map<NodeId, int> got;
  for (int i = 0; i < 400; ++i)
    ++got[pick(d, c, "/x")];
  EXPECT_NEAR(got[2], 200, 2);
  EXPECT_NEAR(got[1], 100, 2);
  EXPECT_NEAR(got[3], 100, 2);
}

TEST(LeastConn, ConnectionsThatEndedSinceTheReportNoLongerCount) {
  ContentMap m = one_policy(Policy::kLeastConn);
  Dispatcher d(m, three_nodes(), 1);
  Cluster c;
  c.load = {{1, 50}, {2, 0}, {3, 0}};  // node 1 busy: nodes 2 and 3 take turns
  for (int i = 0; i < 20; ++i)
    pick(d, c, "/x");
  // Node 2's ten short connections all ended before the next report: it is idle again, node 3 is not.
  for (int i = 0; i < 10; ++i)
    d.note_ended(2);
  for (int i = 0; i < 10; ++i)
    EXPECT_EQ(pick(d, c, "/x"), 2u) << "choice " << i;
  // More ends than choices (some were in the report already) never take a node below its report.
  for (int i = 0; i < 30; ++i)
    d.note_ended(3);
  c.load[3] = 7;
  EXPECT_EQ(d.choose({"/x", "", ""}, c.view(), 0).node, 3u) << "3 counts 7 against 2's 10";
  d.note_ended(9);  // a node never chosen: nothing to take back
}

TEST(Dispatch, OnlyTheRulesNodesThatAreReachableServe) {
  ContentMap m;
  m.set_default({1});
  m.add({"/pool/", {2, 3}, Policy::kLeastConn});
  Dispatcher d(m, three_nodes(), 1);
  Cluster c;
  for (int i = 0; i < 10; ++i)
    EXPECT_NE(pick(d, c, "/pool/x"), 1u);
  c.up = {1};
  const Decision nobody = d.choose({"/pool/x", "", ""}, c.view(), 0);
  EXPECT_EQ(nobody.node, 1u) << "nobody reachable: answered here";
  EXPECT_TRUE(nobody.unavailable) << "node 1 may not serve /pool/: it says so (503)";
  m.add({"/any/", {}, Policy::kLeastConn});
  EXPECT_FALSE(d.choose({"/any/x", "", ""}, c.view(), 0).unavailable) << "every node may serve /any/";
  EXPECT_TRUE(d.keeps({"/elsewhere", "", ""}, 1)) << "content: a holder keeps the connection";
  EXPECT_FALSE(d.keeps({"/pool/x", "", ""}, 2)) << "other policies decide every request";
}

}  // namespace
}  // namespace baton

namespace baton {
namespace {

struct Draining {
  std::set<NodeId> up{1, 2, 3};
  std::set<NodeId> draining;
  std::map<NodeId, uint32_t> load;
  PeerView view() {
    return {[this](NodeId n) { return up.count(n) != 0; }, [this](NodeId n) { return load[n]; }, nullptr,
            [this](NodeId n) { return draining.count(n) != 0; }};
  }
};

TEST(Drain, ADrainingHolderServesOnlyWhenNoOtherCan) {
  ContentMap m;
  m.add({"/shared/", {2, 3}});
  m.add({"/mine/", {1, 3}});
  m.add({"/only1/", {1}});
  m.set_default({1});
  Draining p;
  p.load[2] = 0;
  p.load[3] = 50;
  p.draining = {2};
  EXPECT_EQ(choose_node(m, "/shared/x", 1, p.view()).node, 3u) << "the busier holder, since 2 drains";
  p.draining = {2, 3};
  EXPECT_EQ(choose_node(m, "/shared/x", 1, p.view()).node, 2u) << "all drain: the least loaded still serves";
  // This node drains: its content goes to another holder, or stays here if none.
  p.draining = {1};
  EXPECT_EQ(choose_node(m, "/mine/x", 1, p.view()).node, 3u);
  EXPECT_EQ(choose_node(m, "/only1/x", 1, p.view()).node, 1u);
  p.up.erase(3);
  EXPECT_EQ(choose_node(m, "/mine/x", 1, p.view()).node, 1u);
}

TEST(Drain, OtherPoliciesSkipDrainingNodesAndMoveTheirTargets) {
  ContentMap m;
  m.set_default({}, Policy::kLard);
  DispatchSettings s;
  s.nodes = {1, 2, 3};
  Dispatcher d(m, s, 1);
  Draining p;
  const NodeId first = d.choose({"/t", "", ""}, p.view(), 0).node;
  p.draining = {first};
  const NodeId next = d.choose({"/t", "", ""}, p.view(), 1).node;
  EXPECT_NE(next, first);
  EXPECT_EQ(d.lard_servers("/t"), std::vector<NodeId>{next});
  EXPECT_FALSE(d.keeps({"/t", "", ""}, first)) << "LARD decides every request: the next one moves";
  p.draining = {1, 2, 3};
  EXPECT_NE(d.choose({"/t", "", ""}, p.view(), 2).node, 0u) << "all drain: someone still serves";
}

}  // namespace
}  // namespace baton

namespace baton {
namespace {

TEST(RoundRobin, EachNodeInTurnAsOftenAsItsCapacity) {
  ContentMap m;
  m.set_default({}, Policy::kRoundRobin);
  DispatchSettings s;
  s.nodes = {1, 2, 3};
  s.capacity = {{1, 1}, {2, 2}, {3, 1}};
  Dispatcher d(m, s, 1);
  Cluster c;
  c.load[1] = 100;  // loads play no part
  std::vector<NodeId> first;
  for (int i = 0; i < 8; ++i)
    first.push_back(d.choose({"/x", "", ""}, c.view(), 0).node);
  EXPECT_EQ(first, (std::vector<NodeId>{2, 1, 3, 2, 2, 1, 3, 2}));
  c.up.erase(2);
  std::map<NodeId, int> got;
  for (int i = 0; i < 10; ++i)
    ++got[d.choose({"/x", "", ""}, c.view(), 0).node];
  EXPECT_EQ(got[2], 0);
  EXPECT_EQ(got[1], 5);
  EXPECT_EQ(got[3], 5);
  EXPECT_EQ(parse_policy("round-robin"), Policy::kRoundRobin);
}

}  // namespace
}  // namespace baton
