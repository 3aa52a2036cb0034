// LARD and LARD/R (Pai et al., "Locality-Aware Request Distribution in Cluster-based Network Servers",
// ASPLOS 1998): each target (a URL path) is assigned to a node, so that its bytes stay in that node's
// cache; it moves (LARD) or its server set grows (LARD/R) only when that node is overloaded while
// another is idle, or far overloaded.
#pragma once

#include <cstdint>
#include <list>
#include <string>
#include <unordered_map>
#include <vector>

namespace baton {

using NodeId = uint32_t;

class Lard {
 public:
  struct Node {
    NodeId id;
    uint32_t load;
    uint64_t rank;  // the target's rendezvous score on this node: the first choice of a new target
  };
  struct Settings {
    uint32_t low = 25;
    uint32_t high = 65;
    uint64_t shrink_ms = 20'000;
    size_t max_targets = 65'536;
  };
  Lard(Settings s, bool replicate) : s_(s), replicate_(replicate) {}
  // New thresholds (a reload); the targets' assignments stay.
  void set_settings(Settings s);

  // `nodes`: those that may serve the target now (reachable), never empty.
  NodeId choose(const std::string& target, const std::vector<Node>& nodes, uint64_t now_ms);
  std::vector<NodeId> servers(const std::string& target) const;

 private:
  struct Entry {
    std::vector<NodeId> servers;
    uint64_t changed_ms = 0;
    std::list<std::string>::iterator lru;
  };
  Entry& entry(const std::string& target);

  Settings s_;
  bool replicate_;
  std::unordered_map<std::string, Entry> targets_;
  std::list<std::string> lru_;  // most recently requested first
};

}  // namespace baton
