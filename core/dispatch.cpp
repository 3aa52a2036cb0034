#include "core/dispatch.hpp"

#include <algorithm>

namespace baton {

void ContentMap::add(ContentRule rule) {
  rules_.push_back(std::move(rule));
  std::stable_sort(rules_.begin(), rules_.end(), [](const ContentRule& a, const ContentRule& b) {
    return a.prefix.size() > b.prefix.size();
  });
}

const std::vector<NodeId>& ContentMap::lookup(const std::string& path) const {
  for (const auto& r : rules_) {
    if (path.compare(0, r.prefix.size(), r.prefix) == 0) return r.nodes;
  }
  return default_;
}

Decision choose_node(const ContentMap& map, const std::string& path, NodeId self, const PeerView& peers) {
  const auto& holders = map.lookup(path);
  if (holders.empty()) return {self, "no holder configured"};
  if (std::find(holders.begin(), holders.end(), self) != holders.end()) return {self, "held locally"};
  const NodeId* best = nullptr;
  uint32_t best_load = 0;
  for (const NodeId& n : holders) {
    if (!peers.reachable(n)) continue;
    uint32_t load = peers.load(n);
    if (!best || load < best_load) {
      best = &n;
      best_load = load;
    }
  }
  if (!best) return {self, "no holder reachable"};
  return {*best, "least-loaded holder"};
}

}  // namespace baton
