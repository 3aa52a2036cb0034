#include "daemon/config.hpp"

#include <fmt/format.h>
#include <toml++/toml.h>
#include <fstream>
#include <optional>
#include <set>
#include <sstream>

#include "core/packet.hpp"

namespace baton {

const NodeConfig* Config::node(NodeId id) const {
  for (const auto& n : nodes) {
    if (n.id == id) return &n;
  }
  return nullptr;
}

namespace {

struct Fail {
  std::string message;
};

template <class T>
T required(const toml::node_view<const toml::node>& v, const std::string& key) {
  if (!v) throw Fail{"missing required key '" + key + "'"};
  auto x = v.value<T>();
  if (!x) throw Fail{"key '" + key + "' has the wrong type"};
  return *x;
}

template <class T>
T optional_value(const toml::node_view<const toml::node>& v, const std::string& key, T fallback) {
  if (!v) return fallback;
  auto x = v.value<T>();
  if (!x) throw Fail{"key '" + key + "' has the wrong type"};
  return *x;
}

uint32_t address(const std::string& text, const std::string& key) {
  auto a = parse_ipv4(text);
  if (!a) throw Fail{"key '" + key + "': '" + text + "' is not an IPv4 address"};
  return *a;
}

// "ADDR" or "ADDR:PORT": the address, and the port if one is given.
std::pair<uint32_t, std::optional<uint16_t>> endpoint(std::string text, const std::string& key) {
  std::optional<uint16_t> port;
  const size_t colon = text.rfind(':');
  if (colon != std::string::npos) {
    const std::string digits = text.substr(colon + 1);
    char* end = nullptr;
    const long p = std::strtol(digits.c_str(), &end, 10);
    if (digits.empty() || *end || p < 1 || p > 65535)
      throw Fail{fmt::format("{}: bad port '{}'", key, digits)};
    port = static_cast<uint16_t>(p);
    text = text.substr(0, colon);
  }
  return {address(text, key), port};
}

int64_t in_range(int64_t v, int64_t lo, int64_t hi, const std::string& key) {
  if (v < lo || v > hi) {
    throw Fail{"key '" + key + "' must be between " + std::to_string(lo) + " and " + std::to_string(hi)};
  }
  return v;
}

// content: the holders, at least one. Any other policy: the nodes that may serve, every node when
// left out or empty.
std::vector<NodeId> node_list(const toml::node_view<const toml::node>& v, const std::string& key,
                              const std::set<NodeId>& known, Policy policy = Policy::kContent) {
  if (!v && policy != Policy::kContent) return {};
  const toml::array* arr = v.as_array();
  if (!arr) throw Fail{"key '" + key + "' must be an array of node ids"};
  std::vector<NodeId> out;
  for (const auto& e : *arr) {
    auto id = e.value<int64_t>();
    if (!id) throw Fail{"key '" + key + "' must hold node ids (integers)"};
    if (!known.count(static_cast<NodeId>(*id)))
      throw Fail{"key '" + key + "' names unknown node " + std::to_string(*id)};
    out.push_back(static_cast<NodeId>(*id));
  }
  if (out.empty() && policy == Policy::kContent) throw Fail{"key '" + key + "' must name at least one node"};
  return out;
}

Policy policy_value(const toml::node_view<const toml::node>& v, const std::string& key, Policy fallback) {
  if (!v) return fallback;
  const std::string name = optional_value<std::string>(v, key, "");
  auto p = parse_policy(name);
  if (!p)
    throw Fail{"key '" + key + "': unknown policy '" + name +
               "' (content, lard, lard-r, hash, least-conn, round-robin)"};
  return *p;
}

void reject_unknown(const toml::table& t, const std::set<std::string>& known, const std::string& where) {
  for (const auto& [k, v] : t) {
    if (!known.count(std::string(k.str()))) throw Fail{"unknown key '" + where + std::string(k.str()) + "'"};
  }
}

DispatchSettings dispatch_settings(const toml::table* d) {
  DispatchSettings s;
  if (!d) return s;
  reject_unknown(*d, {"lard_low", "lard_high", "lard_shrink_ms", "lard_targets", "hash_balance", "hash_key"},
                 "dispatch.");
  auto number = [&](const char* key, int64_t fallback, int64_t lo, int64_t hi) {
    return in_range(optional_value<int64_t>((*d)[key], std::string("dispatch.") + key, fallback), lo, hi,
                    std::string("dispatch.") + key);
  };
  s.lard_low = static_cast<uint32_t>(number("lard_low", s.lard_low, 0, 1'000'000));
  s.lard_high = static_cast<uint32_t>(number("lard_high", s.lard_high, 1, 1'000'000));
  if (s.lard_low >= s.lard_high) throw Fail{"dispatch.lard_low must be below dispatch.lard_high"};
  s.lard_shrink_ms = static_cast<uint64_t>(number("lard_shrink_ms", 20'000, 1, 86'400'000));
  s.lard_targets = static_cast<size_t>(number("lard_targets", 65'536, 1, 16'777'216));
  if (auto v = (*d)["hash_balance"]) {
    auto x = v.value<double>();
    if (!x || !(*x > 0.0 && *x <= 10.0))
      throw Fail{"key 'dispatch.hash_balance' must be a number in (0, 10]"};
    s.hash_balance = *x;
  }
  const std::string key = optional_value<std::string>((*d)["hash_key"], "dispatch.hash_key", "path");
  auto k = parse_hash_key(key);
  if (!k) throw Fail{"key 'dispatch.hash_key': '" + key + "' is not path, host or cookie:NAME"};
  s.hash_key = *k;
  return s;
}

Config parse(const toml::table& t) {
  Config c;
  c.node_id = static_cast<NodeId>(in_range(required<int64_t>(t["node_id"], "node_id"), 1, 65535, "node_id"));
  c.service_port = static_cast<uint16_t>(
      in_range(optional_value<int64_t>(t["service_port"], "service_port", 80), 1, 65535, "service_port"));
  c.datapath = optional_value<std::string>(t["datapath"], "datapath", "ebpf");
  if (c.datapath != "nfqueue" && c.datapath != "ebpf") {
    throw Fail{"key 'datapath': '" + c.datapath + "' is not available (this build has: ebpf, nfqueue)"};
  }
  c.bpf_pin_dir = optional_value<std::string>(t["bpf_pin_dir"], "bpf_pin_dir", c.bpf_pin_dir);
  if (c.bpf_pin_dir.rfind("/sys/fs/bpf/", 0) != 0) throw Fail{"key 'bpf_pin_dir' must be below /sys/fs/bpf/"};
  c.queue_num = static_cast<uint16_t>(
      in_range(optional_value<int64_t>(t["queue_num"], "queue_num", 0), 0, 65535, "queue_num"));
  c.packet_mark = static_cast<uint32_t>(in_range(
      optional_value<int64_t>(t["packet_mark"], "packet_mark", 0xba70), 1, 0xffffffffLL, "packet_mark"));
  // The two top bits below are the eBPF datapath's own marks (bpf/baton_abi.h).
  if (c.packet_mark & 0x60000000u)
    throw Fail{"key 'packet_mark' must leave bits 0x60000000 clear (used by batond)"};
  c.status_socket = optional_value<std::string>(t["status_socket"], "status_socket", c.status_socket);
  if (const auto listen = optional_value<std::string>(t["metrics_listen"], "metrics_listen", "");
      !listen.empty()) {
    const auto [addr, port] = endpoint(listen, "metrics_listen");
    if (!port)
      throw Fail{"key 'metrics_listen': '" + listen + "' needs a port (ADDR:PORT, e.g. 0.0.0.0:9470)"};
    c.metrics_addr = addr;
    c.metrics_port = *port;
  }
  c.manage_sysctls = optional_value<bool>(t["manage_sysctls"], "manage_sysctls", true);
  c.kernel_triage = optional_value<bool>(t["kernel_triage"], "kernel_triage", true);
  c.secret = required<std::string>(t["secret"], "secret");
  if (c.secret.size() < 16) throw Fail{"key 'secret' must be at least 16 characters"};

  const toml::array* nodes = t["nodes"].as_array();
  if (!nodes || nodes->empty()) throw Fail{"missing [[nodes]]: every node of the cluster must be listed"};
  std::set<NodeId> ids;
  for (size_t i = 0; i < nodes->size(); ++i) {
    const toml::table* n = (*nodes)[i].as_table();
    std::string where = "nodes[" + std::to_string(i) + "]";
    if (!n) throw Fail{where + " must be a table"};
    reject_unknown(*n, {"id", "service_address", "control_address", "capacity"}, where + ".");
    NodeConfig nc;
    nc.id =
        static_cast<NodeId>(in_range(required<int64_t>((*n)["id"], where + ".id"), 1, 65535, where + ".id"));
    if (!ids.insert(nc.id).second)
      throw Fail{where + ".id: node " + std::to_string(nc.id) + " is listed twice"};
    nc.service_addr = address(required<std::string>((*n)["service_address"], where + ".service_address"),
                              where + ".service_address");
    const auto [control, port] =
        endpoint(required<std::string>((*n)["control_address"], where + ".control_address"),
                 where + ".control_address");
    nc.control_addr = control;
    if (port) nc.control_port = *port;
    nc.capacity =
        static_cast<uint32_t>(in_range(optional_value<int64_t>((*n)["capacity"], where + ".capacity", 1), 1,
                                       1'000'000, where + ".capacity"));
    c.nodes.push_back(nc);
  }
  if (!c.node(c.node_id)) throw Fail{"node_id " + std::to_string(c.node_id) + " is not among [[nodes]]"};

  const toml::table* content = t["content"].as_table();
  if (!content) throw Fail{"missing [content] section"};
  reject_unknown(*content, {"default", "rules", "policy"}, "content.");
  const Policy policy = policy_value((*content)["policy"], "content.policy", Policy::kContent);
  c.content.set_default(node_list((*content)["default"], "content.default", ids, policy), policy);
  if (const toml::array* rules = (*content)["rules"].as_array()) {
    for (size_t i = 0; i < rules->size(); ++i) {
      const toml::table* r = (*rules)[i].as_table();
      std::string where = "content.rules[" + std::to_string(i) + "]";
      if (!r) throw Fail{where + " must be a table"};
      reject_unknown(*r, {"prefix", "nodes", "policy"}, where + ".");
      std::string prefix = required<std::string>((*r)["prefix"], where + ".prefix");
      if (prefix.empty() || prefix[0] != '/') throw Fail{where + ".prefix must start with '/'"};
      const Policy p = policy_value((*r)["policy"], where + ".policy", policy);
      c.content.add({prefix, node_list((*r)["nodes"], where + ".nodes", ids, p), p});
    }
  }

  if (const toml::table* to = t["timeouts"].as_table()) {
    reject_unknown(
        *to,
        {"hold_ms", "handoff_ms", "idle_ms", "linger_ms", "heartbeat_ms", "peer_down_ms", "peer_stall_ms"},
        "timeouts.");
    auto ms = [&](const char* key, uint64_t fallback) {
      return static_cast<uint64_t>(in_range(
          optional_value<int64_t>((*to)[key], std::string("timeouts.") + key, static_cast<int64_t>(fallback)),
          1, 86'400'000, std::string("timeouts.") + key));
    };
    c.hold_timeout_ms = ms("hold_ms", c.hold_timeout_ms);
    c.handoff_timeout_ms = ms("handoff_ms", c.handoff_timeout_ms);
    c.idle_timeout_ms = ms("idle_ms", c.idle_timeout_ms);
    c.linger_ms = ms("linger_ms", c.linger_ms);
    c.heartbeat_ms = ms("heartbeat_ms", c.heartbeat_ms);
    c.peer_down_ms = ms("peer_down_ms", c.peer_down_ms);
    // A lost heartbeat segment is retransmitted after one RTO (200 ms at least): a peer must be allowed
    // to miss one.
    if (c.peer_down_ms < 2 * c.heartbeat_ms + 200)
      throw Fail{"timeouts.peer_down_ms must be at least 2 x timeouts.heartbeat_ms + 200 (" +
                 std::to_string(2 * c.heartbeat_ms + 200) + ")"};
    c.peer_stall_ms = static_cast<uint64_t>(
        in_range(optional_value<int64_t>((*to)["peer_stall_ms"], "timeouts.peer_stall_ms",
                                         static_cast<int64_t>(c.peer_stall_ms)),
                 0, 86'400'000, "timeouts.peer_stall_ms"));
    // A peer's kernel may hold its ACK back until its next heartbeat: shorter would see a stall in every
    // quiet moment. Not shorter than peer_down_ms either, or it would never come first.
    if (c.peer_stall_ms && (c.peer_stall_ms < c.heartbeat_ms + 50 || c.peer_stall_ms >= c.peer_down_ms))
      throw Fail{"timeouts.peer_stall_ms must be 0 (off) or from timeouts.heartbeat_ms + 50 (" +
                 std::to_string(c.heartbeat_ms + 50) + ") to below timeouts.peer_down_ms (" +
                 std::to_string(c.peer_down_ms) + ")"};
  }
  c.dispatch = dispatch_settings(t["dispatch"].as_table());
  for (const auto& n : c.nodes) {
    c.dispatch.nodes.push_back(n.id);
    c.dispatch.capacity[n.id] = n.capacity;
  }
  c.max_flows = static_cast<size_t>(
      in_range(optional_value<int64_t>(t["max_flows"], "max_flows", 65536), 16, 16'777'216, "max_flows"));
  c.workers = static_cast<uint32_t>(
      in_range(optional_value<int64_t>(t["workers"], "workers", 1), 1, Config::kMaxWorkers, "workers"));
  // A flow's worker is the top bits of a hash of its client's address and port (worker_of): a power of
  // two.
  if (c.workers & (c.workers - 1)) throw Fail{"key 'workers' must be a power of two (1, 2, 4, ...)"};
  if (c.queue_num + c.workers - 1 > 65535)
    throw Fail{"key 'queue_num': workers use queues queue_num to queue_num + workers - 1, past 65535"};
  for (const auto& n : c.nodes) {
    if (n.control_port + c.workers - 1 > 65535)
      throw Fail{"node " + std::to_string(n.id) + "'s control port " + std::to_string(n.control_port) +
                 ": workers use ports control port to control port + workers - 1, past 65535"};
  }

  static const std::set<std::string> known_keys{
      "node_id",       "service_port",   "datapath", "bpf_pin_dir",    "queue_num", "packet_mark",
      "status_socket", "manage_sysctls", "secret",   "nodes",          "content",   "timeouts",
      "max_flows",     "kernel_triage",  "dispatch", "metrics_listen", "workers"};
  for (const auto& [k, v] : t) {
    if (!known_keys.count(std::string(k.str()))) throw Fail{"unknown key '" + std::string(k.str()) + "'"};
  }
  return c;
}

}  // namespace

Result<Config> parse_config(const std::string& text, const std::string& source_name) {
  try {
    toml::table t = toml::parse(text, source_name);
    return parse(t);
  } catch (const toml::parse_error& e) {
    std::ostringstream os;
    os << source_name << ":" << e.source().begin.line << ":" << e.source().begin.column << ": "
       << e.description();
    return make_error(os.str());
  } catch (const Fail& f) {
    return make_error(source_name + ": " + f.message);
  }
}

std::string reload_refusal(const Config& running, const Config& next) {
  auto differs = [](const char* key, const auto& a, const auto& b) -> std::string {
    if (a == b) return "";
    return fmt::format("{} cannot change at reload ({} running, {} in the file): restart batond", key, a, b);
  };
  const NodeConfig* self = next.node(running.node_id);
  std::string why = differs("node_id", running.node_id, next.node_id);
  if (why.empty() && !self) why = "this node is no longer among [[nodes]]";
  if (why.empty()) why = differs("service_port", running.service_port, next.service_port);
  if (why.empty()) why = differs("datapath", running.datapath, next.datapath);
  if (why.empty()) why = differs("bpf_pin_dir", running.bpf_pin_dir, next.bpf_pin_dir);
  if (why.empty()) why = differs("queue_num", running.queue_num, next.queue_num);
  if (why.empty()) why = differs("packet_mark", running.packet_mark, next.packet_mark);
  if (why.empty()) why = differs("status_socket", running.status_socket, next.status_socket);
  auto listen = [](const Config& c) {
    return c.metrics_port ? format_endpoint(c.metrics_addr, c.metrics_port) : std::string("none");
  };
  if (why.empty()) why = differs("metrics_listen", listen(running), listen(next));
  if (why.empty()) why = differs("manage_sysctls", running.manage_sysctls, next.manage_sysctls);
  if (why.empty()) why = differs("max_flows", running.max_flows, next.max_flows);
  if (why.empty()) why = differs("workers", running.workers, next.workers);
  if (why.empty())
    why = differs("this node's service_address", format_ipv4(running.self().service_addr),
                  format_ipv4(self->service_addr));
  if (why.empty())
    why = differs("this node's control_address",
                  format_endpoint(running.self().control_addr, running.self().control_port),
                  format_endpoint(self->control_addr, self->control_port));
  return why;
}

Result<Config> load_config(const std::string& path) {
  std::ifstream in(path);
  if (!in) return make_error(path + ": cannot open config file");
  std::stringstream ss;
  ss << in.rdbuf();
  return parse_config(ss.str(), path);
}

}  // namespace baton
