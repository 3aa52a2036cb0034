// batond's configuration: the TOML file described in docs/config.md, parsed and validated.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/dispatch.hpp"
#include "core/result.hpp"

namespace baton {

struct NodeConfig {
  NodeId id = 0;
  uint32_t service_addr = 0;  // clients connect here
  uint32_t control_addr = 0;  // batond peers connect here
  uint16_t control_port = 7700;
  uint32_t capacity = 1;  // relative capacity, for the least-conn and hash policies
};

struct Config {
  NodeId node_id = 0;
  uint16_t service_port = 80;
  std::string datapath = "ebpf";  // "ebpf" (tc programs + NFQUEUE slow path) or "nfqueue" (reference)
  std::string bpf_pin_dir = "/sys/fs/bpf/baton";
  uint16_t queue_num = 0;
  uint32_t packet_mark = 0xba70;  // marks the replayed connections' packets on a back end
  std::string status_socket = "/run/baton/batond.sock";
  // Prometheus endpoint (metrics_listen = "ADDR:PORT"); port 0: none.
  uint32_t metrics_addr = 0;
  uint16_t metrics_port = 0;
  std::string secret;  // shared by the cluster; authenticates the control channel
  bool manage_sysctls = true;
  bool kernel_triage = true;  // eBPF datapath: tc follows new connections and serves local requests itself
  std::vector<NodeConfig> nodes;
  ContentMap content;
  DispatchSettings dispatch;  // policy parameters; nodes and capacities from [[nodes]]
  // Timeouts, milliseconds.
  uint64_t hold_timeout_ms = 5'000;
  uint64_t handoff_timeout_ms = 2'000;
  uint64_t idle_timeout_ms = 600'000;
  uint64_t linger_ms = 2'000;
  // Control channel: a heartbeat this often; a peer heard nothing from for peer_down_ms is down (its
  // connection dropped, no new handoffs to it, redialled).
  uint64_t heartbeat_ms = 200;
  uint64_t peer_down_ms = 900;
  // A peer whose kernel has not acknowledged what was sent it for peer_stall_ms (core/stall_watch.hpp)
  // gets new handoffs only when no other holder can take them, until it acknowledges again or is down.
  // 0: off.
  uint64_t peer_stall_ms = 250;
  size_t max_flows = 65'536;  // per worker and role
  // Threads that each run a whole engine (its own NFQUEUE queue queue_num + i, its own control connection
  // to every peer on control port + i) for the flows whose client hashes to i (worker_of). Every node of
  // a cluster needs the same count.
  uint32_t workers = 1;
  static constexpr int64_t kMaxWorkers = 64;

  const NodeConfig* node(NodeId id) const;
  const NodeConfig& self() const { return *node(node_id); }
};

// What a reload may not change (the node's identity, its addresses, where its kernel state lives, the
// flow maps' size): such a change needs a restart. Empty when `next` may replace `running`.
std::string reload_refusal(const Config& running, const Config& next);

// Parses and validates; errors name the file, the key and what is wrong with it.
Result<Config> load_config(const std::string& path);
Result<Config> parse_config(const std::string& text, const std::string& source_name);

}  // namespace baton
