#include "ctl/top.hpp"

#include <cstdio>
#include <ctime>
#include <string>

namespace baton::ctl {

namespace {

uint64_t counter(const nlohmann::json& s, const char* role, const char* name) {
  return s.contains(role) ? s[role].value(name, uint64_t{0}) : 0;
}

double rate(const nlohmann::json& before, const nlohmann::json& now, const char* role, const char* name,
            double seconds) {
  const uint64_t a = counter(before, role, name);
  const uint64_t b = counter(now, role, name);
  // A restarted batond starts its counters again: no negative rates.
  return b >= a && seconds > 0 ? static_cast<double>(b - a) / seconds : 0.0;
}

// The bound under which 99% of the interval's handoffs completed.
nlohmann::json p99_bound(const nlohmann::json& before, const nlohmann::json& now) {
  const auto& h1 = now["frontend"]["handoff_latency_ms"];
  const auto& h0 = before["frontend"]["handoff_latency_ms"];
  if (!h1.is_object() || !h0.is_object()) return nullptr;
  const auto& bounds = h1["bounds"];
  std::vector<uint64_t> delta;
  uint64_t total = 0;
  for (size_t i = 0; i < h1["counts"].size(); ++i) {
    const uint64_t b = h1["counts"][i].get<uint64_t>();
    const uint64_t a = i < h0["counts"].size() ? h0["counts"][i].get<uint64_t>() : 0;
    delta.push_back(b >= a ? b - a : 0);
    total += delta.back();
  }
  if (total == 0) return nullptr;
  uint64_t seen = 0;
  for (size_t i = 0; i < delta.size(); ++i) {
    seen += delta[i];
    if (seen * 100 >= total * 99) return i < bounds.size() ? bounds[i] : nlohmann::json("inf");
  }
  return "inf";
}

}  // namespace

nlohmann::json top_row(const nlohmann::json& before, const nlohmann::json& now, double seconds) {
  size_t up = 0;
  size_t peers = 0;
  for (const auto& p : now["control"]["peers"]) {
    if (p.value("retired", false)) continue;
    ++peers;
    if (p.value("connected", false)) ++up;
  }
  return {{"time", static_cast<int64_t>(std::time(nullptr))},
          {"handoffs_per_s", rate(before, now, "frontend", "handed_off", seconds)},
          {"local_per_s", rate(before, now, "frontend", "served_locally", seconds)},  // the kernel's included
          {"retried_per_s", rate(before, now, "frontend", "handoff_retried", seconds)},
          {"unavailable_per_s", rate(before, now, "frontend", "answered_unavailable", seconds)},
          {"moves_per_s", rate(before, now, "frontend", "migrations", seconds)},
          {"accepted_per_s", rate(before, now, "backend", "handoffs_accepted", seconds)},
          {"handoff_p99_ms_under", p99_bound(before, now)},
          {"frontend_flows", counter(now, "frontend", "live_flows")},
          {"backend_flows", counter(now, "backend", "live_flows")},
          {"load", now.value("load", 0)},
          {"peers_up", up},
          {"peers", peers}};
}

void print_top_header() {
  std::printf("%-8s %9s %8s %8s %6s %7s %9s %8s %8s %8s %5s %6s\n", "TIME", "HANDOFF/s", "LOCAL/s", "RETRY/s",
              "503/s", "MOVE/s", "ACCEPT/s", "P99_MS<", "FE_FLOWS", "BE_FLOWS", "LOAD", "PEERS");
}

void print_top_row(const nlohmann::json& r) {
  char when[16];
  const std::time_t t = r["time"].get<int64_t>();
  std::tm tm{};
  localtime_r(&t, &tm);
  std::strftime(when, sizeof(when), "%H:%M:%S", &tm);
  const std::string p99 = r["handoff_p99_ms_under"].is_null() ? "-" : r["handoff_p99_ms_under"].dump();
  const std::string peers =
      std::to_string(r["peers_up"].get<size_t>()) + "/" + std::to_string(r["peers"].get<size_t>());
  std::printf("%-8s %9.0f %8.0f %8.0f %6.0f %7.0f %9.0f %8s %8s %8s %5s %6s\n", when,
              r["handoffs_per_s"].get<double>(), r["local_per_s"].get<double>(),
              r["retried_per_s"].get<double>(), r["unavailable_per_s"].get<double>(),
              r["moves_per_s"].get<double>(), r["accepted_per_s"].get<double>(), p99.c_str(),
              r["frontend_flows"].dump().c_str(), r["backend_flows"].dump().c_str(), r["load"].dump().c_str(),
              peers.c_str());
  std::fflush(stdout);
}

}  // namespace baton::ctl
