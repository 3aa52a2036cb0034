// Dispatch: which node should serve a request. The content map says which rule a path falls under; the
// rule's policy picks the node from the rule's nodes and the load each node reports. docs/dispatch.md
// describes each policy and when to choose it.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace baton {

using NodeId = uint32_t;

enum class Policy : uint8_t {
  kContent,     // static placement: here if held here, else the least-loaded holder
  kLard,        // locality-aware request distribution (Pai et al., ASPLOS 1998)
  kLardR,       // LARD with replication: a hot target's server set grows and shrinks
  kHash,        // consistent (rendezvous) hashing of a request key, with bounded loads
  kLeastConn,   // the node with the fewest connections for its capacity
  kRoundRobin,  // each node in turn, as often as its capacity says: the baseline LARD was measured against
};
const char* policy_name(Policy p);
std::optional<Policy> parse_policy(std::string_view name);

struct ContentRule {
  std::string prefix;  // URL path prefix, e.g. "/videos/"
  // content: the nodes holding it, in order of preference (none: served where the request arrives).
  // Every other policy: the nodes that may serve it (none: every node of the cluster).
  std::vector<NodeId> nodes;
  Policy policy = Policy::kContent;
};

// Longest-prefix match from URL path to its rule; unmatched paths fall under the default rule ("").
class ContentMap {
 public:
  void add(ContentRule rule);
  void set_default(std::vector<NodeId> nodes, Policy policy = Policy::kContent) {
    default_ = {"", std::move(nodes), policy};
  }
  const ContentRule& rule_for(const std::string& path) const;
  const std::vector<NodeId>& lookup(const std::string& path) const { return rule_for(path).nodes; }
  const std::vector<ContentRule>& rules() const { return rules_; }
  const ContentRule& default_rule() const { return default_; }
  const std::vector<NodeId>& default_nodes() const { return default_.nodes; }

 private:
  std::vector<ContentRule> rules_;  // kept sorted by descending prefix length
  ContentRule default_;
};

struct PeerView {
  std::function<bool(NodeId)> reachable;  // control channel up and authenticated (peers only)
  // Connections the node's web server holds, as the node last reported (this node's own: measured).
  std::function<uint32_t(NodeId)> load;
  // How many load reports came from the node so far: choices made since the last one are added to the
  // reported load (so that a burst does not all go to the node that looked idle). Optional.
  std::function<uint64_t(NodeId)> reports = nullptr;
  // Draining (this node too): no new requests while another node that may serve them is not. Optional.
  std::function<bool(NodeId)> draining = nullptr;
};

struct Decision {
  NodeId node = 0;
  const char* why = "";
  // No node that may serve the request can (this one included): `node` is this node, which answers
  // that the service is unavailable (503) rather than letting its web server say the content does not
  // exist (404).
  bool unavailable = false;
};

// The content policy: serve locally when this node holds the content (a handoff costs more than it
// saves), otherwise the least-loaded reachable holder (ties: the `turn`-th of the tied ones, in map
// order, modulo their number: callers pass a counter, so that short connections, which leave every
// holder at zero between requests, are spread). With no holder reachable, unavailable (this node answers
// 503). Draining holders (this node included) serve only when no other holder can.
Decision choose_node(const ContentMap& map, const std::string& path, NodeId self, const PeerView& peers,
                     uint64_t turn = 0);

// What a request is dispatched by.
struct RequestFacts {
  std::string path;
  std::string host;
  std::string cookie;  // the Cookie header's value
  bool head = false;   // a HEAD request: an answer from batond itself has no body
};

struct HttpRequestHead;
RequestFacts facts_of(const HttpRequestHead& head);

// What the hash policy hashes.
struct HashKey {
  enum Kind : uint8_t { kPath, kHost, kCookie } kind = kPath;
  std::string cookie;  // kCookie: the cookie's name
};
// "path", "host" or "cookie:NAME".
std::optional<HashKey> parse_hash_key(std::string_view text);

struct DispatchSettings {
  std::vector<NodeId> nodes;            // every node of the cluster
  std::map<NodeId, uint32_t> capacity;  // relative capacity (weight) of a node; absent: 1
  uint32_t lard_low = 25;               // T_low: a node below it is idle enough to take a target over
  uint32_t lard_high = 65;              // T_high: a node above it is overloaded if another is idle
  uint64_t lard_shrink_ms = 20'000;     // LARD/R: K, a server set unchanged this long loses a node
  size_t lard_targets = 65'536;         // targets remembered; the least recently requested go first
  double hash_balance = 0.25;           // epsilon: no node takes more than (1 + epsilon) x its share
  HashKey hash_key;
};

class Lard;

class Dispatcher {
 public:
  Dispatcher(const ContentMap& map, DispatchSettings settings, NodeId self);
  ~Dispatcher();
  Dispatcher(const Dispatcher&) = delete;
  Dispatcher& operator=(const Dispatcher&) = delete;

  // The node for a request; `peers` may exclude nodes (a retry after a refusal).
  Decision choose(const RequestFacts& req, const PeerView& peers, uint64_t now_ms);
  // A connection this front end sent to `node` has ended there. Between two load reports a node's load
  // is its report plus the choices made since, minus those that ended since: with short connections,
  // choices alone would pile up to many times the real load within one report period.
  void note_ended(NodeId node);
  // Multiple handoff: whether the node serving a connection keeps its next request without a decision
  // (content policy: the node holds it; the kernel's request watching follows the same rule).
  bool keeps(const RequestFacts& req, NodeId current) const;
  // LARD: the nodes a target is assigned to now (empty if none), for status and tests.
  std::vector<NodeId> lard_servers(const std::string& path) const;
  const DispatchSettings& settings() const { return settings_; }
  // A reload: new settings (the content map is re-read in place); what LARD learnt stays, except for
  // nodes that may no longer serve, which lose their targets at the next request.
  void reconfigure(DispatchSettings settings);

 private:
  struct Candidate {
    NodeId node;
    uint32_t load;      // as reported, plus choices since
    uint32_t capacity;  // weight
  };
  std::vector<Candidate> candidates(const ContentRule& rule, const PeerView& peers);
  uint32_t load_of(NodeId node, const PeerView& peers);
  Decision least_conn(const std::vector<Candidate>& c);
  Decision hashed(const RequestFacts& req, const std::vector<Candidate>& c);
  Decision round_robin(const std::vector<Candidate>& c);

  const ContentMap& map_;
  DispatchSettings settings_;
  NodeId self_;
  std::unique_ptr<Lard> lard_;
  std::unique_ptr<Lard> lard_r_;
  // Choices made since a node's last load report (PeerView::reports), less the connections that ended
  // since: added to what it reported.
  struct Since {
    uint64_t reports = 0;
    uint32_t chosen = 0;
  };
  std::unordered_map<NodeId, Since> since_;
  std::unordered_map<NodeId, int64_t> turn_;  // round robin: each node's current weight (smooth WRR)
  uint64_t ties_ = 0;                         // least-loaded choices: which of the tied nodes
};

}  // namespace baton
