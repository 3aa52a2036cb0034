// Timeouts over a flow table without touching every flow on every tick: flows in a state that lasts
// milliseconds (a handshake, a decision, a replay) are looked at on every call, every flow (the many idle
// and lingering ones) once a second. The short-lived set is a superset, pruned as it is walked, so a flow
// someone forgot to note is still looked at by the next full sweep: late by up to a second, never lost.
#pragma once

#include <cstdint>
#include <unordered_set>
#include <vector>

namespace baton {

template <class Key, class Hash>
class FlowSweep {
 public:
  static constexpr uint64_t kFullSweepMs = 1000;

  // The flow `key` may have entered a short-lived state.
  void note(const Key& key) { busy_.insert(key); }

  // visit(iterator) handles one flow's timeouts and returns the iterator after it (erasing is allowed);
  // short_lived(flow) says whether its state needs a look at every call.
  template <class Map, class ShortLived, class Visit>
  void run(Map& flows, uint64_t now_ms, ShortLived short_lived, Visit visit) {
    if (now_ms >= next_full_ms_) {
      next_full_ms_ = now_ms + kFullSweepMs;
      for (auto it = flows.begin(); it != flows.end();)
        it = visit(it);
      busy_.clear();
      for (const auto& [key, flow] : flows) {
        if (short_lived(flow)) busy_.insert(key);
      }
      return;
    }
    const std::vector<Key> keys(busy_.begin(), busy_.end());
    for (const Key& key : keys) {
      auto it = flows.find(key);
      if (it == flows.end() || !short_lived(it->second)) {
        busy_.erase(key);
        continue;
      }
      visit(it);
    }
  }

 private:
  std::unordered_set<Key, Hash> busy_;
  uint64_t next_full_ms_ = 0;
};

}  // namespace baton
