// The content map as a longest-prefix table of bounded keys, for a matcher that sees only the first
// `max_len` bytes of a path (the kernel's LPM trie, bpf/baton_abi.h). Each entry says what the full
// map would answer for every path whose longest match it is, or that it cannot tell (`unsure`).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "core/dispatch.hpp"

namespace baton {

struct PrefixEntry {
  std::string prefix;    // at most max_len bytes; "" matches every path
  bool local = false;    // choose_node serves it here whatever the peers say (held here, or no holder)
  bool unsure = false;   // a longer rule was cut to fit: only the full map can tell
  uint64_t holders = 0;  // bit n: node n holds it (n < 64)
  bool wide = false;     // a holder's id is 64 or more: `holders` is incomplete
  bool operator==(const PrefixEntry&) const = default;
};

// One entry per distinct key; always one for "" (the default, or a rule with an empty prefix).
std::vector<PrefixEntry> prefix_entries(const ContentMap& map, NodeId self, size_t max_len);

// The entry a longest-prefix matcher over `entries` picks for `path` (its first `max_len` bytes), or
// nullptr. The kernel does the same with its trie; tests compare both against ContentMap::lookup.
const PrefixEntry* match_prefix(const std::vector<PrefixEntry>& entries, const std::string& path,
                                size_t max_len);

}  // namespace baton
