#include "daemon/worker_status.hpp"

#include <string>

namespace baton {

namespace {

const nlohmann::json& member(const nlohmann::json& j, const char* key) {
  static const nlohmann::json none = nlohmann::json::object();
  const auto it = j.find(key);
  return it == j.end() ? none : *it;
}

// a + b for counters (unsigned when both are, as the engine's are); other values stay a's.
nlohmann::json sum(const nlohmann::json& a, const nlohmann::json& b) {
  if (a.is_number_unsigned() && b.is_number_unsigned()) return a.get<uint64_t>() + b.get<uint64_t>();
  if (a.is_number_integer() && b.is_number_integer()) return a.get<int64_t>() + b.get<int64_t>();
  return a;
}

// Adds `from` into `into`, key by key: numbers summed, arrays of numbers element by element (except
// "bounds", which every worker has the same of).
void add_counters(nlohmann::json& into, const nlohmann::json& from) {
  for (auto it = from.begin(); it != from.end(); ++it) {
    if (!into.contains(it.key())) continue;
    nlohmann::json& dst = into[it.key()];
    const nlohmann::json& src = it.value();
    if (src.is_object()) {
      add_counters(dst, src);
    } else if (src.is_array() && dst.is_array() && it.key() != "bounds" && src.size() == dst.size()) {
      for (size_t i = 0; i < src.size(); ++i)
        dst[i] = sum(dst[i], src[i]);
    } else {
      dst = sum(dst, src);
    }
  }
}

void merge_peers(nlohmann::json& into, const nlohmann::json& from) {
  for (auto& peer : into) {
    for (const auto& other : from) {
      if (other.value("id", 0) != peer.value("id", 0)) continue;
      peer["connected"] = peer.value("connected", false) && other.value("connected", false);
      peer["stalled"] = peer.value("stalled", false) || other.value("stalled", false);
      if (peer.value("last_error", std::string()).empty() &&
          !other.value("last_error", std::string()).empty())
        peer["last_error"] = other["last_error"];
    }
  }
}

}  // namespace

nlohmann::json merge_worker_status(const std::vector<nlohmann::json>& workers) {
  if (workers.empty()) return nlohmann::json::object();
  nlohmann::json merged = workers.front();
  merged["workers"] = workers.size();
  if (workers.size() == 1) return merged;
  nlohmann::json per_worker = nlohmann::json::array();
  for (size_t i = 0; i < workers.size(); ++i) {
    const nlohmann::json& w = workers[i];
    per_worker.push_back({{"worker", i},
                          {"live_flows", w.value("live_flows", 0U)},
                          {"load", w.value("load", 0U)},
                          {"handed_off", member(w, "frontend").value("handed_off", 0U)},
                          {"served_locally", member(w, "frontend").value("served_locally", 0U)},
                          {"handoffs_accepted", member(w, "backend").value("handoffs_accepted", 0U)},
                          {"peers_up", [&] {
                             size_t up = 0;
                             for (const auto& p : member(member(w, "control"), "peers"))
                               up += p.value("connected", false) ? 1 : 0;
                             return up;
                           }()}});
    if (i == 0) continue;
    const nlohmann::json& control = member(w, "control");
    for (const char* part : {"frontend", "backend"})
      add_counters(merged[part], member(w, part));
    merged["live_flows"] = sum(merged["live_flows"], member(w, "live_flows"));
    merged["control"]["messages_unsent"] =
        sum(merged["control"]["messages_unsent"], member(control, "messages_unsent"));
    merge_peers(merged["control"]["peers"], member(control, "peers"));
  }
  merged["per_worker"] = std::move(per_worker);
  return merged;
}

nlohmann::json merge_worker_flows(const std::vector<nlohmann::json>& workers) {
  nlohmann::json all = nlohmann::json::array();
  for (size_t i = 0; i < workers.size(); ++i) {
    for (auto f : workers[i]) {
      f["worker"] = i;
      all.push_back(std::move(f));
    }
  }
  return all;
}

}  // namespace baton
