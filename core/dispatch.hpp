// Content-aware dispatch: which node should serve a request, from the content map and peer load.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace baton {

using NodeId = uint32_t;

struct ContentRule {
  std::string prefix;         // URL path prefix, e.g. "/videos/"
  std::vector<NodeId> nodes;  // nodes holding that content, in order of preference
};

// Longest-prefix match from URL path to the nodes that hold it; unmatched paths go to the default.
class ContentMap {
 public:
  void add(ContentRule rule);
  void set_default(std::vector<NodeId> nodes) { default_ = std::move(nodes); }
  const std::vector<NodeId>& lookup(const std::string& path) const;
  const std::vector<ContentRule>& rules() const { return rules_; }
  const std::vector<NodeId>& default_nodes() const { return default_; }

 private:
  std::vector<ContentRule> rules_;  // kept sorted by descending prefix length
  std::vector<NodeId> default_;
};

struct PeerView {
  std::function<bool(NodeId)> reachable;  // control channel up and authenticated
  std::function<uint32_t(NodeId)> load;   // live flows the node reports
};

struct Decision {
  NodeId node = 0;
  const char* why = "";
};

// Serve locally when this node holds the content (a handoff costs more than it saves), otherwise the
// least-loaded reachable holder (ties: the earlier in the map). With no holder reachable, serve locally:
// the web server's answer (often 404) beats a stalled connection.
Decision choose_node(const ContentMap& map, const std::string& path, NodeId self, const PeerView& peers);

}  // namespace baton
