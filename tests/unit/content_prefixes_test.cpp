#include "core/content_prefixes.hpp"

#include <gtest/gtest.h>

#include <random>

namespace baton {
namespace {

constexpr size_t kMax = 8;  // small, so that cut rules are easy to write

bool local_by_map(const ContentMap& m, const std::string& path, NodeId self) {
  const auto& holders = m.lookup(path);
  return holders.empty() || std::find(holders.begin(), holders.end(), self) != holders.end();
}

TEST(ContentPrefixes, EveryRuleAndTheDefaultGetOneEntry) {
  ContentMap m;
  m.add({"/a/", {1}});
  m.add({"/b/", {2, 3}});
  m.add({"/a/", {2}});  // a duplicate: the first one wins in the map, and here
  m.set_default({});
  auto e = prefix_entries(m, 1, kMax);
  ASSERT_EQ(e.size(), 3u);
  EXPECT_EQ(e[0], (PrefixEntry{"/a/", true, false, 0b10, false}));
  EXPECT_EQ(e[1], (PrefixEntry{"/b/", false, false, 0b1100, false}));
  EXPECT_EQ(e[2], (PrefixEntry{"", true, false, 0, false}));  // no holder: served where it arrives
}

TEST(ContentPrefixes, RulesDecidedByLoadAreLeftToUserSpace) {
  ContentMap m;
  m.add({"/a/", {1}});
  m.add({"/pool/", {1, 2}, Policy::kLard});
  m.set_default({}, Policy::kHash);
  auto e = prefix_entries(m, 1, kMax);
  ASSERT_EQ(e.size(), 3u);
  EXPECT_EQ(e[0], (PrefixEntry{"/pool/", false, true, 0, false})) << "never local, never watched on";
  EXPECT_EQ(e[1], (PrefixEntry{"/a/", true, false, 0b10, false}));
  EXPECT_EQ(e[2], (PrefixEntry{"", false, true, 0, false}));
}

TEST(ContentPrefixes, RulesLongerThanTheKeyAreCutAndUnsure) {
  ContentMap m;
  m.add({"/videos/hd/", {2}});
  m.add({"/videos/sd/", {1}});
  m.add({"/videos/", {1}});  // exactly kMax bytes, under the cut ones
  m.add({"/vid", {3}});
  m.set_default({1});
  auto e = prefix_entries(m, 1, kMax);
  const PrefixEntry* hd = match_prefix(e, "/videos/hd/x", kMax);
  ASSERT_NE(hd, nullptr);
  EXPECT_TRUE(hd->unsure);
  EXPECT_EQ(hd->prefix, "/videos/");
  const PrefixEntry* vid = match_prefix(e, "/vidx", kMax);
  ASSERT_NE(vid, nullptr);
  EXPECT_FALSE(vid->unsure);
  EXPECT_FALSE(vid->local);
  EXPECT_EQ(vid->holders, uint64_t{1} << 3);
}

TEST(ContentPrefixes, WideNodeIdsAreFlagged) {
  ContentMap m;
  m.add({"/x", {70, 2}});
  auto e = prefix_entries(m, 2, kMax);
  EXPECT_TRUE(e[0].wide);
  EXPECT_TRUE(e[0].local);
  EXPECT_EQ(e[0].holders, uint64_t{1} << 2);
}

// The differential: for random maps and paths, whatever the bounded matcher answers without being
// unsure is what the full map answers.
TEST(ContentPrefixes, AgreeWithTheFullMapOnRandomPaths) {
  std::mt19937 rng(7);
  const std::string alphabet = "/ab";
  auto random_string = [&](size_t max) {
    std::string s = "/";
    size_t n = rng() % max;
    for (size_t i = 0; i < n; ++i)
      s += alphabet[rng() % alphabet.size()];
    return s;
  };
  for (int round = 0; round < 200; ++round) {
    ContentMap m;
    for (int r = static_cast<int>(rng() % 8); r > 0; --r) {
      std::vector<NodeId> nodes;
      for (NodeId n = 1; n <= 3; ++n)
        if (rng() % 2) nodes.push_back(n);
      m.add({random_string(kMax + 4), nodes});
    }
    if (rng() % 2) m.set_default({static_cast<NodeId>(1 + rng() % 3)});
    const NodeId self = 1 + rng() % 3;
    auto entries = prefix_entries(m, self, kMax);
    size_t sure = 0;
    for (int i = 0; i < 200; ++i) {
      const std::string path = random_string(kMax + 6);
      const PrefixEntry* e = match_prefix(entries, path, kMax);
      ASSERT_NE(e, nullptr) << path;  // "" always matches
      if (e->unsure) continue;
      ++sure;
      EXPECT_EQ(e->local, local_by_map(m, path, self)) << path;
      uint64_t holders = 0;
      for (NodeId n : m.lookup(path))
        holders |= uint64_t{1} << n;
      EXPECT_EQ(e->holders, holders) << path;
    }
    EXPECT_GT(sure, 0u);
  }
}

}  // namespace
}  // namespace baton
