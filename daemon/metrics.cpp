#include "daemon/metrics.hpp"

#include <prometheus/metric_family.h>
#include <prometheus/text_serializer.h>

#include <limits>
#include <sstream>
#include <utility>
#include <vector>

namespace baton {

namespace {
using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;
using Labels = std::vector<ClientMetric::Label>;

// A number, or a boolean as 1 or 0; absent: 0.
double number(const nlohmann::json& doc, const nlohmann::json::json_pointer& at) {
  if (!doc.contains(at)) return 0.0;
  const auto& v = doc.at(at);
  if (v.is_boolean()) return v.get<bool>() ? 1.0 : 0.0;
  return v.is_number() ? v.get<double>() : 0.0;
}

class Families {
 public:
  explicit Families(const nlohmann::json& status) : s_(status) {}

  // One family; `values`: its samples, each with its labels and the status path it is read from (times
  // `scale`: the status counts milliseconds and microseconds, Prometheus seconds).
  void add(const std::string& name, const std::string& help, MetricType type,
           const std::vector<std::pair<Labels, std::string>>& values, double scale = 1.0) {
    MetricFamily f{name, help, type, {}};
    for (const auto& [labels, path] : values)
      f.metric.push_back(sample(type, labels, scale * number(s_, nlohmann::json::json_pointer(path))));
    out_.push_back(std::move(f));
  }
  void add(const std::string& name, const std::string& help, MetricType type, const std::string& path,
           double scale = 1.0) {
    add(name, help, type, {{Labels{}, path}}, scale);
  }
  void add_constant(const std::string& name, const std::string& help, Labels labels, double v) {
    out_.push_back({name, help, MetricType::Gauge, {sample(MetricType::Gauge, std::move(labels), v)}});
  }
  void add_family(MetricFamily f) { out_.push_back(std::move(f)); }
  static ClientMetric sample(MetricType type, Labels labels, double v) {
    ClientMetric m;
    m.label = std::move(labels);
    if (type == MetricType::Counter) m.counter.value = v;
    if (type == MetricType::Gauge) m.gauge.value = v;
    return m;
  }
  std::vector<MetricFamily>& families() { return out_; }

 private:
  const nlohmann::json& s_;
  std::vector<MetricFamily> out_;
};

MetricFamily handoff_latency(const nlohmann::json& h) {
  MetricFamily f{"baton_handoff_latency_seconds",
                 "From a client's SYN (under kernel triage: its request reaching batond) to the back end's "
                 "acceptance of the handoff",
                 MetricType::Histogram,
                 {}};
  ClientMetric m;
  uint64_t cumulative = 0;
  const auto& bounds = h.at("bounds");
  const auto& counts = h.at("counts");
  for (size_t i = 0; i < bounds.size(); ++i) {
    cumulative += counts.at(i).get<uint64_t>();
    m.histogram.bucket.push_back({cumulative, bounds.at(i).get<double>() / 1000});
  }
  cumulative += counts.at(bounds.size()).get<uint64_t>();
  m.histogram.bucket.push_back({cumulative, std::numeric_limits<double>::infinity()});
  m.histogram.sample_count = h.at("count").get<uint64_t>();
  m.histogram.sample_sum = h.at("sum").get<double>() / 1000;
  f.metric.push_back(std::move(m));
  return f;
}
}  // namespace

std::string metrics_text(const nlohmann::json& status) {
  Families f(status);
  const auto C = MetricType::Counter;
  const auto G = MetricType::Gauge;
  f.add_constant("baton_up", "1 while batond runs (its node id in the label)",
                 {{"node", std::to_string(status.value("node_id", 0))}}, 1);
  f.add("baton_uptime_seconds", "Since batond started", G, "/uptime_ms", 1e-3);
  f.add("baton_flows", "Live connections batond tracks, by role", G,
        {{{{"role", "frontend"}}, "/frontend/live_flows"}, {{{"role", "backend"}}, "/backend/live_flows"}});
  f.add("baton_load", "Connections this node's web server holds (what its heartbeats report)", G, "/load");
  f.add("baton_draining", "1 while this node drains", G, "/draining");
  f.add("baton_connections_total", "New client connections this node was the front end of", C,
        "/frontend/flows_seen");
  f.add(
      "baton_served_locally_total",
      "Requests served by this node's own web server as front end, by who decided (the tc programs alone, or "
      "batond)",
      C,
      {{{{"decided_by", "kernel"}}, "/frontend/served_locally_by_kernel"},
       {{{"decided_by", "any"}}, "/frontend/served_locally"}});
  f.add("baton_handoffs_total", "Handoffs of a connection's first request, by result", C,
        {{{{"result", "accepted"}}, "/frontend/handed_off"},
         {{{"result", "refused"}}, "/frontend/handoff_refused"},
         {{{"result", "timeout"}}, "/frontend/handoff_timeouts"},
         {{{"result", "unreached"}}, "/frontend/handoff_unreached"}});
  f.add("baton_handoffs_retried_total", "Refused or unreached handoffs sent on to another node", C,
        "/frontend/handoff_retried");
  f.add("baton_answered_unavailable_total", "Requests no node could serve, answered 503 by batond", C,
        "/frontend/answered_unavailable");
  f.add("baton_answers_failed_total", "503 answers that could not be given (the client was reset)", C,
        "/frontend/answers_failed");
  f.add("baton_bad_requests_total", "Requests batond could not read (served locally)", C,
        "/frontend/bad_requests");
  f.add("baton_malformed_dropped_total",
        "Client packets of tracked flows that do not parse, dropped by batond (the tc programs count theirs "
        "as baton_datapath_drops_total{reason=\"malformed\"})",
        C, "/frontend/malformed_dropped");
  f.add("baton_hold_timeouts_total", "Requests incomplete after hold_ms (served locally)", C,
        "/frontend/hold_timeouts");
  f.add("baton_requests_decided_total", "Later requests of keep-alive connections decided at their boundary",
        C, "/frontend/requests_decided");
  f.add("baton_migrations_total",
        "Keep-alive connections moved between nodes at a request boundary, by result", C,
        {{{{"result", "moved"}}, "/frontend/migrations"},
         {{{"result", "refused"}}, "/frontend/migrations_refused"}});
  f.add("baton_flows_lost_total",
        "Handed-off connections ended because their back end restarted without them", C,
        "/frontend/flows_lost");
  f.add("baton_held_request_bytes", "Request bytes held while their decision is pending", G,
        "/frontend/held_request_bytes");
  f.add("baton_table_full_total",
        "New connections left to the local stack untracked: the flow table was full", C,
        "/frontend/table_full");
  f.add_family(handoff_latency(status.at("frontend").at("handoff_latency_ms")));
  f.add("baton_backend_handoffs_total", "Handoffs to this node as back end, by result", C,
        {{{{"result", "accepted"}}, "/backend/handoffs_accepted"},
         {{{"result", "refused"}}, "/backend/handoffs_refused"}});
  f.add("baton_backend_flows_closed_total", "Handed-off connections this node served to their end", C,
        "/backend/flows_closed");
  f.add("baton_control_messages_unsent_total", "Control messages dropped: their peer was unreachable", C,
        "/control/messages_unsent");

  // Peers, as this node sees them.
  std::vector<std::pair<Labels, std::string>> up, load, rtt, draining, stalled;
  const auto& peers = status.at("control").at("peers");
  for (size_t i = 0; i < peers.size(); ++i) {
    const Labels l{{"peer", std::to_string(peers[i].value("id", 0))}};
    const std::string at = "/control/peers/" + std::to_string(i);
    up.emplace_back(l, at + "/connected");
    load.emplace_back(l, at + "/load");
    rtt.emplace_back(l, at + "/rtt_us");
    draining.emplace_back(l, at + "/draining");
    stalled.emplace_back(l, at + "/stalled");
  }
  f.add("baton_peer_up", "1 while the control channel to the peer is up and authenticated", G, up);
  f.add("baton_peer_load", "The peer's load as its last heartbeat reported it", G, load);
  f.add("baton_peer_rtt_seconds", "Smoothed round-trip time of the control connection to the peer", G, rtt,
        1e-6);
  f.add("baton_peer_draining", "1 while the peer drains", G, draining);
  f.add("baton_peer_stalled",
        "1 while the peer's kernel acknowledges nothing sent to it (timeouts.peer_stall_ms)", G, stalled);

  // The tc programs' per-CPU counters (eBPF datapath), summed over CPUs.
  const auto& dp = status.value("datapath_stats", nlohmann::json::object());
  if (dp.contains("counters")) {
    std::vector<std::pair<Labels, std::string>> packets, bytes;
    for (const auto& [name, v] : dp.at("counters").items()) {
      const bool is_bytes = name.size() > 6 && name.ends_with("_bytes");
      (is_bytes ? bytes : packets)
          .emplace_back(Labels{{"counter", is_bytes ? name.substr(0, name.size() - 6) : name}},
                        "/datapath_stats/counters/" + name);
    }
    f.add("baton_datapath_packets_total",
          "Packets the tc programs handled, by what they did (docs/operations.md)", C, packets);
    f.add("baton_datapath_bytes_total", "Payload bytes the tc programs forwarded or rewrote", C, bytes);
    std::vector<std::pair<Labels, std::string>> drops;
    const nlohmann::json dropped = dp.value("drops", nlohmann::json::object());
    for (const auto& [name, v] : dropped.items())
      drops.emplace_back(Labels{{"reason", name}}, "/datapath_stats/drops/" + name);
    f.add("baton_datapath_drops_total", "Packets the tc programs dropped, by reason (docs/operations.md)", C,
          drops);
    f.add("baton_datapath_events_lost_total", "Events the tc programs could not put in the ring buffer", C,
          "/datapath_stats/counters/event_lost");
    f.add("baton_datapath_map_full_total", "Flow map inserts refused: the map was full", C,
          "/datapath_stats/map_full");
    f.add("baton_datapath_flow_map_bytes", "Kernel memory of the preallocated flow maps", G,
          "/datapath_stats/flow_map_bytes");
  }
  std::ostringstream text;
  prometheus::TextSerializer().Serialize(text, f.families());
  return text.str();
}

}  // namespace baton
