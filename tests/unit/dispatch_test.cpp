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
  EXPECT_EQ(choose_node(sample_map(), "/shared/x", 1, p.view()).node, 2u);  // tie: map order
  p.load[2] = 5;
  EXPECT_EQ(choose_node(sample_map(), "/shared/x", 1, p.view()).node, 3u);
  p.up.erase(3);
  EXPECT_EQ(choose_node(sample_map(), "/shared/x", 1, p.view()).node, 2u);
  p.up.erase(2);
  EXPECT_EQ(choose_node(sample_map(), "/shared/x", 1, p.view()).node, 1u);  // nobody: serve here
}

TEST(Dispatch, UnknownPathGoesToDefault) {
  Peers p;
  ContentMap m = sample_map();
  m.set_default({2});
  EXPECT_EQ(choose_node(m, "/unknown", 1, p.view()).node, 2u);
}

}  // namespace
}  // namespace baton
