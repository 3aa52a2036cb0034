#include "core/content_prefixes.hpp"

#include <algorithm>

namespace baton {

namespace {
PrefixEntry entry_for(std::string prefix, const ContentRule& rule, NodeId self) {
  const std::vector<NodeId>& nodes = rule.nodes;
  PrefixEntry e;
  e.prefix = std::move(prefix);
  if (rule.policy != Policy::kContent) {
    // Decided by load and by what the front end saw before: only user space can tell.
    e.unsure = true;
    return e;
  }
  e.local = nodes.empty() || std::find(nodes.begin(), nodes.end(), self) != nodes.end();
  for (NodeId n : nodes) {
    if (n < 64) {
      e.holders |= uint64_t{1} << n;
    } else {
      e.wide = true;
    }
  }
  return e;
}
}  // namespace

std::vector<PrefixEntry> prefix_entries(const ContentMap& map, NodeId self, size_t max_len) {
  std::vector<PrefixEntry> out;
  auto find = [&out](const std::string& key) {
    return std::find_if(out.begin(), out.end(), [&key](const PrefixEntry& e) { return e.prefix == key; });
  };
  // rules() is sorted longest first and, among equal lengths, in config order; the first rule of a
  // prefix is the one ContentMap::lookup answers with.
  for (const ContentRule& r : map.rules()) {
    if (r.prefix.size() > max_len) {
      const std::string key = r.prefix.substr(0, max_len);
      auto it = find(key);
      if (it == out.end()) {
        PrefixEntry e;
        e.prefix = key;
        e.unsure = true;
        out.push_back(std::move(e));
      } else {
        it->unsure = true;
      }
      continue;
    }
    // A rule exactly max_len long under cut longer ones stays unsure: its key matches their paths too.
    if (find(r.prefix) == out.end()) out.push_back(entry_for(r.prefix, r, self));
  }
  if (find("") == out.end()) out.push_back(entry_for("", map.default_rule(), self));
  return out;
}

const PrefixEntry* match_prefix(const std::vector<PrefixEntry>& entries, const std::string& path,
                                size_t max_len) {
  const std::string key = path.substr(0, max_len);
  const PrefixEntry* best = nullptr;
  for (const PrefixEntry& e : entries) {
    if (key.compare(0, e.prefix.size(), e.prefix) == 0 && (!best || e.prefix.size() > best->prefix.size()))
      best = &e;
  }
  return best;
}

}  // namespace baton
