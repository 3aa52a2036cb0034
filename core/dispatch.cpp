#include "core/dispatch.hpp"

#include <algorithm>
#include <cmath>

#include "core/http_peek.hpp"
#include "core/policy_lard.hpp"

namespace baton {

const char* policy_name(Policy p) {
  switch (p) {
    case Policy::kContent:
      return "content";
    case Policy::kLard:
      return "lard";
    case Policy::kLardR:
      return "lard-r";
    case Policy::kHash:
      return "hash";
    case Policy::kLeastConn:
      return "least-conn";
    case Policy::kRoundRobin:
      return "round-robin";
  }
  return "?";
}

std::optional<Policy> parse_policy(std::string_view name) {
  for (Policy p : {Policy::kContent, Policy::kLard, Policy::kLardR, Policy::kHash, Policy::kLeastConn,
                   Policy::kRoundRobin}) {
    if (name == policy_name(p)) return p;
  }
  return std::nullopt;
}

std::optional<HashKey> parse_hash_key(std::string_view text) {
  if (text == "path") return HashKey{HashKey::kPath, ""};
  if (text == "host") return HashKey{HashKey::kHost, ""};
  constexpr std::string_view kCookie = "cookie:";
  if (text.starts_with(kCookie) && text.size() > kCookie.size())
    return HashKey{HashKey::kCookie, std::string(text.substr(kCookie.size()))};
  return std::nullopt;
}

RequestFacts facts_of(const HttpRequestHead& head) {
  return {head.path, head.host, head.cookie, head.method == "HEAD"};
}

void ContentMap::add(ContentRule rule) {
  rules_.push_back(std::move(rule));
  std::stable_sort(rules_.begin(), rules_.end(), [](const ContentRule& a, const ContentRule& b) {
    return a.prefix.size() > b.prefix.size();
  });
}

const ContentRule& ContentMap::rule_for(const std::string& path) const {
  for (const auto& r : rules_) {
    if (path.compare(0, r.prefix.size(), r.prefix) == 0) return r;
  }
  return default_;
}

Decision choose_node(const ContentMap& map, const std::string& path, NodeId self, const PeerView& peers,
                     uint64_t turn) {
  const auto& holders = map.lookup(path);
  if (holders.empty()) return {self, "no holder configured"};
  auto draining = [&peers](NodeId n) { return peers.draining && peers.draining(n); };
  const bool held_here = std::find(holders.begin(), holders.end(), self) != holders.end();
  if (held_here && !draining(self)) return {self, "held locally"};
  // The least-loaded reachable holder, one that is not draining if there is one; ties in turn.
  std::vector<NodeId> tied;
  uint32_t best_load = 0;
  bool best_draining = true;
  for (const NodeId& n : holders) {
    if (n == self || !peers.reachable(n)) continue;
    const uint32_t load = peers.load(n);
    const bool d = draining(n);
    if (tied.empty() || (best_draining && !d) || (d == best_draining && load < best_load)) {
      tied.assign(1, n);
      best_load = load;
      best_draining = d;
    } else if (d == best_draining && load == best_load) {
      tied.push_back(n);
    }
  }
  if (held_here && (tied.empty() || best_draining)) return {self, "held locally (draining, no other holder)"};
  if (tied.empty()) return {self, "no holder reachable", true};
  return {tied[turn % tied.size()],
          best_draining ? "least-loaded holder (all draining)" : "least-loaded holder"};
}

namespace {
// Stable across processes and hosts (every front end must agree): FNV-1a, then a 64-bit finaliser
// (splitmix64) so that nearby inputs spread.
uint64_t mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

uint64_t hash_text(std::string_view s) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return mix(h);
}

// Rendezvous (highest random weight) score of a node for a key: removing a node moves only the keys
// it had; adding one takes only the keys it now wins.
uint64_t rendezvous(uint64_t key_hash, NodeId node) {
  return mix(key_hash ^ mix(node));
}

// Weighted rendezvous: score w / -ln(u), u uniform in (0, 1) from the plain score.
double weighted_score(uint64_t key_hash, NodeId node, uint32_t weight) {
  const double u = static_cast<double>((rendezvous(key_hash, node) >> 11) | 1) * 0x1p-53;
  return static_cast<double>(weight) / -std::log(u);
}

std::string_view cookie_value(std::string_view cookies, std::string_view name) {
  while (!cookies.empty()) {
    size_t end = cookies.find(';');
    std::string_view pair = cookies.substr(0, end);
    while (!pair.empty() && pair.front() == ' ')
      pair.remove_prefix(1);
    size_t eq = pair.find('=');
    if (eq != std::string_view::npos && pair.substr(0, eq) == name) return pair.substr(eq + 1);
    if (end == std::string_view::npos) break;
    cookies.remove_prefix(end + 1);
  }
  return {};
}
}  // namespace

namespace {
Lard::Settings lard_settings(const DispatchSettings& s) {
  return {s.lard_low, s.lard_high, s.lard_shrink_ms, s.lard_targets};
}
}  // namespace

Dispatcher::Dispatcher(const ContentMap& map, DispatchSettings settings, NodeId self)
    : map_(map),
      settings_(std::move(settings)),
      self_(self),
      lard_(std::make_unique<Lard>(lard_settings(settings_), false)),
      lard_r_(std::make_unique<Lard>(lard_settings(settings_), true)) {}

Dispatcher::~Dispatcher() = default;

void Dispatcher::reconfigure(DispatchSettings settings) {
  settings_ = std::move(settings);
  lard_->set_settings(lard_settings(settings_));
  lard_r_->set_settings(lard_settings(settings_));
}

uint32_t Dispatcher::load_of(NodeId node, const PeerView& peers) {
  const uint32_t reported = peers.load(node);
  if (!peers.reports) return reported;
  Since& s = since_[node];
  const uint64_t r = peers.reports(node);
  if (r != s.reports) {
    s.reports = r;
    s.chosen = 0;
  }
  return reported + s.chosen;
}

void Dispatcher::note_ended(NodeId node) {
  // A connection ended since the report: it no longer adds to the load. It may have been counted in the
  // report already rather than among the choices since (never below the report, then).
  auto it = since_.find(node);
  if (it != since_.end() && it->second.chosen > 0) --it->second.chosen;
}

std::vector<Dispatcher::Candidate> Dispatcher::candidates(const ContentRule& rule, const PeerView& peers) {
  const std::vector<NodeId>& allowed = rule.nodes.empty() ? settings_.nodes : rule.nodes;
  std::vector<Candidate> out, drained;
  for (NodeId n : allowed) {
    if (n != self_ && !peers.reachable(n)) continue;
    auto cap = settings_.capacity.find(n);
    const Candidate c{n, load_of(n, peers), cap == settings_.capacity.end() ? 1u : std::max(1u, cap->second)};
    (peers.draining && peers.draining(n) ? drained : out).push_back(c);
  }
  // Draining nodes take requests only when no other node may.
  return out.empty() ? drained : out;
}

Decision Dispatcher::least_conn(const std::vector<Candidate>& c) {
  // Fewest connections per unit of capacity; ties: this node (no handoff), else the tied nodes in turn
  // (short connections leave every node at zero between requests: the first would take them all).
  auto fewer = [](const Candidate& a, const Candidate& b) {
    return uint64_t{a.load + 1} * b.capacity < uint64_t{b.load + 1} * a.capacity;
  };
  const Candidate* best = &c.front();
  for (const Candidate& n : c)
    if (fewer(n, *best)) best = &n;
  std::vector<const Candidate*> tied;
  for (const Candidate& n : c) {
    if (fewer(n, *best) || fewer(*best, n)) continue;
    if (n.node == self_) return {self_, "fewest connections for its capacity (this node)"};
    tied.push_back(&n);
  }
  return {tied[ties_++ % tied.size()]->node, "fewest connections for its capacity"};
}

Decision Dispatcher::hashed(const RequestFacts& req, const std::vector<Candidate>& c) {
  std::string_view key = req.path;
  if (settings_.hash_key.kind == HashKey::kHost && !req.host.empty()) key = req.host;
  if (settings_.hash_key.kind == HashKey::kCookie) {
    std::string_view v = cookie_value(req.cookie, settings_.hash_key.cookie);
    if (!v.empty()) key = v;
  }
  const uint64_t h = hash_text(key);
  // Bounded loads: no node takes more than (1 + epsilon) x its capacity's share of all connections,
  // this one included. Some node is always under its bound.
  uint64_t total_load = 1, total_capacity = 0;
  for (const Candidate& n : c) {
    total_load += n.load;
    total_capacity += n.capacity;
  }
  std::vector<std::pair<double, const Candidate*>> order;
  order.reserve(c.size());
  for (const Candidate& n : c)
    order.emplace_back(weighted_score(h, n.node, n.capacity), &n);
  std::sort(order.begin(), order.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  for (const auto& [score, n] : order) {
    const double bound = std::ceil((1.0 + settings_.hash_balance) * static_cast<double>(total_load) *
                                   static_cast<double>(n->capacity) / static_cast<double>(total_capacity));
    if (static_cast<double>(n->load) + 1.0 <= bound)
      return {n->node, n == order.front().second ? "hash" : "hash, next under its bound"};
  }
  return least_conn(c);
}

Decision Dispatcher::round_robin(const std::vector<Candidate>& c) {
  // Smooth weighted round robin (as nginx's upstream module): each node gains its weight per choice, the
  // one with the most is chosen and pays the total back. Nodes 1, 2, 3 of weights 1, 2, 1 take turns
  // 2, 1, 3, 2, and again: spread out, not 2, 2 in a row.
  int64_t total = 0;
  const Candidate* best = nullptr;
  for (const Candidate& n : c) {
    int64_t& t = turn_[n.node];
    t += n.capacity;
    total += n.capacity;
    if (!best || t > turn_[best->node]) best = &n;
  }
  turn_[best->node] -= total;
  return {best->node, "round robin"};
}

Decision Dispatcher::choose(const RequestFacts& req, const PeerView& peers, uint64_t now_ms) {
  const ContentRule& rule = map_.rule_for(req.path);
  Decision d;
  if (rule.policy == Policy::kContent) {
    const PeerView adjusted{peers.reachable, [this, &peers](NodeId n) { return load_of(n, peers); }, nullptr,
                            peers.draining};
    d = choose_node(map_, req.path, self_, adjusted, ties_++);
  } else {
    const std::vector<Candidate> c = candidates(rule, peers);
    if (c.empty()) return {self_, "no node that may serve it is reachable", true};
    switch (rule.policy) {
      case Policy::kLeastConn:
        d = least_conn(c);
        break;
      case Policy::kHash:
        d = hashed(req, c);
        break;
      case Policy::kRoundRobin:
        d = round_robin(c);
        break;
      default: {
        const uint64_t h = hash_text(req.path);
        std::vector<Lard::Node> nodes;
        nodes.reserve(c.size());
        for (const Candidate& n : c)
          nodes.push_back({n.node, n.load, rendezvous(h, n.node)});
        Lard& lard = rule.policy == Policy::kLard ? *lard_ : *lard_r_;
        d = {lard.choose(req.path, nodes, now_ms), rule.policy == Policy::kLard ? "lard" : "lard-r"};
      }
    }
  }
  ++since_[d.node].chosen;
  return d;
}

bool Dispatcher::keeps(const RequestFacts& req, NodeId current) const {
  // A draining holder keeps its connections too: the kernel sends their later requests on by the same
  // rule (request watching), and knows nothing of drains.
  const ContentRule& rule = map_.rule_for(req.path);
  return rule.policy == Policy::kContent &&
         std::find(rule.nodes.begin(), rule.nodes.end(), current) != rule.nodes.end();
}

std::vector<NodeId> Dispatcher::lard_servers(const std::string& path) const {
  const ContentRule& rule = map_.rule_for(path);
  if (rule.policy == Policy::kLard) return lard_->servers(path);
  if (rule.policy == Policy::kLardR) return lard_r_->servers(path);
  return {};
}

}  // namespace baton
