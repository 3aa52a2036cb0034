#include "core/policy_lard.hpp"

#include <algorithm>

namespace baton {

namespace {
using Nodes = std::vector<Lard::Node>;

// Ties go to the higher rendezvous rank: front ends that see the same loads agree.
const Lard::Node& least_loaded(const Nodes& nodes) {
  return *std::min_element(nodes.begin(), nodes.end(), [](const Lard::Node& a, const Lard::Node& b) {
    return a.load != b.load ? a.load < b.load : a.rank > b.rank;
  });
}

const Lard::Node* find(const Nodes& nodes, NodeId id) {
  auto it = std::find_if(nodes.begin(), nodes.end(), [id](const Lard::Node& n) { return n.id == id; });
  return it == nodes.end() ? nullptr : &*it;
}
}  // namespace

void Lard::set_settings(Settings s) {
  s_ = s;
  while (targets_.size() > s_.max_targets && !lru_.empty()) {
    targets_.erase(lru_.back());
    lru_.pop_back();
  }
}

Lard::Entry& Lard::entry(const std::string& target) {
  auto it = targets_.find(target);
  if (it != targets_.end()) {
    lru_.splice(lru_.begin(), lru_, it->second.lru);
    return it->second;
  }
  if (targets_.size() >= s_.max_targets && !lru_.empty()) {
    targets_.erase(lru_.back());
    lru_.pop_back();
  }
  lru_.push_front(target);
  Entry& e = targets_[target];
  e.lru = lru_.begin();
  return e;
}

NodeId Lard::choose(const std::string& target, const Nodes& nodes, uint64_t now_ms) {
  Entry& e = entry(target);
  // A server that may not serve now (down, refused, removed) is no server of the target any more.
  std::erase_if(e.servers, [&nodes](NodeId id) { return !find(nodes, id); });
  const bool someone_idle =
      std::any_of(nodes.begin(), nodes.end(), [this](const Node& n) { return n.load < s_.low; });
  auto overloaded = [&](const Node& n) {
    return (n.load > s_.high && someone_idle) || n.load >= 2 * s_.high;
  };

  if (e.servers.empty()) {
    // As published: the least-loaded node. With several front ends, each keeping its own table, that
    // would scatter a target; the target's rendezvous choice among nodes not overloaded is as good for
    // load and the same on every front end.
    const Node* first = nullptr;
    for (const Node& n : nodes) {
      if (n.load < s_.high && (!first || n.rank > first->rank)) first = &n;
    }
    if (!first) first = &least_loaded(nodes);
    e.servers = {first->id};
    e.changed_ms = now_ms;
    return first->id;
  }

  if (!replicate_) {
    const Node& n = *find(nodes, e.servers.front());
    if (!overloaded(n)) return n.id;
    const NodeId to = least_loaded(nodes).id;
    e.servers = {to};
    e.changed_ms = now_ms;
    return to;
  }

  // LARD/R: the least-loaded of the target's servers; the set grows by the least-loaded node when even
  // that one is overloaded, and loses its most-loaded node once unchanged for K.
  Nodes set;
  for (NodeId id : e.servers)
    set.push_back(*find(nodes, id));
  NodeId to = least_loaded(set).id;
  const NodeId most = std::max_element(set.begin(), set.end(), [](const Node& a, const Node& b) {
                        return a.load != b.load ? a.load < b.load : a.rank < b.rank;
                      })->id;
  bool changed = false;
  if (overloaded(least_loaded(set))) {
    to = least_loaded(nodes).id;
    if (std::find(e.servers.begin(), e.servers.end(), to) == e.servers.end()) {
      e.servers.push_back(to);
      changed = true;
    }
  }
  if (e.servers.size() > 1 && now_ms >= e.changed_ms + s_.shrink_ms && most != to) {
    std::erase(e.servers, most);
    changed = true;
  }
  if (changed) e.changed_ms = now_ms;
  return to;
}

std::vector<NodeId> Lard::servers(const std::string& target) const {
  auto it = targets_.find(target);
  return it == targets_.end() ? std::vector<NodeId>{} : it->second.servers;
}

}  // namespace baton
