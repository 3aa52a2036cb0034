// The handoff engine: routes datapath packets and control messages to the front-end and back-end state
// machines, and carries out what they ask for.
#pragma once

#include <deque>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <utility>
#include <vector>

#include "core/backend.hpp"
#include "core/frontend.hpp"
#include "daemon/config.hpp"
#include "daemon/datapath.hpp"
#include "daemon/load_gauge.hpp"
#include "daemon/log_limit.hpp"
#include "daemon/peer_mesh.hpp"
#include "daemon/socket_abort.hpp"
#include "daemon/socket_probe.hpp"

namespace baton {

class Engine {
 public:
  Engine(const Config& cfg, Datapath& datapath);
  void attach(PeerMesh& mesh) { mesh_ = &mesh; }
  // The node's load, shared by the workers: measured here when `measure`, otherwise read from the gauge.
  void share_load(std::shared_ptr<LoadGauge> gauge, bool measure) {
    gauge_ = std::move(gauge);
    measures_load_ = measure;
  }

  void on_packet(const DatapathPacket& p);
  void on_datapath_event(const DatapathEvent& e);
  void on_message(NodeId from, const proto::Message& m);
  void on_peer(NodeId node, bool up, const std::vector<FlowKey>& unreached);
  // Takes over flows an earlier batond left offloaded in the kernel.
  void adopt(const std::vector<AdoptedFlow>& flows);
  void tick(uint64_t now_ms);
  // The config it was made with has been replaced in place (a reload): take up what changed.
  void reconfigure();

  // This node's load as dispatch counts it, and as heartbeats report it: the connections its web server
  // holds (measured every heartbeat_ms; handed-off flows here if that cannot be measured).
  uint32_t node_load() const { return node_load_; }
  nlohmann::json status() const;
  nlohmann::json flows() const;
  // Attaches or detaches the kernel datapath's programs; on detach, what they saw of closes moves to the
  // back end, which sees every packet from now on.
  Status switch_datapath(bool attach);
  // Another worker switched the kernel's programs (its switch_datapath; this one's datapath prepared for
  // it): what this worker's part needs after.
  void follow_switch(bool attach);

 private:
  // Who asked for the actions: a message to this node itself goes to the other state machine (this
  // node is the back end of a flow it is the front end of), and what the front end delivers to the
  // stack of such a flow is shown to the back end.
  enum class Origin { kOutside, kFrontend, kBackend };
  void execute(Actions actions, Origin origin = Origin::kOutside);
  void to_frontend(NodeId from, const proto::Message& m);
  void to_backend(NodeId from, const proto::Message& m);
  // A client packet the front end delivers (a verdict's new bytes, an injected packet): if it is for a
  // flow served by this node's own stack, its back end tracks it.
  void show_backend(const Bytes& packet);
  // After a detach: what the kernel saw of the back-end flows' closes goes to the back end.
  void merge_kernel_closes();
  void abort_local_socket(const FlowKey& key);
  // batond's own answer (a 503) on a socket restored where the held connection stands.
  void answer_here(const AnswerHere& an);
  void probe_local_socket(const FlowKey& key);
  void replay_on_clear_tuple(const ReplayOnClearTuple& re);
  // One line per decision at debug level; requests nobody can read, as rate-limited warnings.
  void log_decision(const Decided& d);
  // Offloaded flows are seen by the datapath only: carry its activity over to the state machines.
  void refresh_activity(uint64_t now_ms);
  // Every node's service address this process was ever configured with (the front end's AddressOf).
  void remember_addresses();
  std::map<NodeId, uint32_t> service_addrs_;

  const Config& cfg_;
  Datapath& datapath_;
  PeerMesh* mesh_ = nullptr;
  Frontend frontend_;
  Backend backend_;
  uint64_t started_ms_;
  uint64_t messages_unsent_ = 0;
  uint64_t next_activity_refresh_ms_ = 0;
  bool abort_warned_ = false;
  uint64_t answers_failed_ = 0;  // AnswerHere that could not be carried out: the client was reset
  bool answer_warned_ = false;
  bool probe_warned_ = false;
  LogLimiter bad_request_log_;
  uint64_t time_waits_cleared_ = 0;
  bool flows_adopted_ = false;  // this process took over flows from its predecessor
  std::set<NodeId> announced_;  // peers told about this process's start (proto::Restarted)
  // Messages to this node itself, delivered once the actions that sent them are carried out.
  std::deque<std::pair<Origin, proto::Message>> to_self_;
  int executing_ = 0;
  void measure_load(uint64_t now_ms);
  uint32_t node_load_ = 0;
  uint64_t load_measures_ = 0;
  uint64_t next_load_ms_ = 0;
  bool load_warned_ = false;
  std::shared_ptr<LoadGauge> gauge_;  // null: this engine measures for itself alone
  bool measures_load_ = true;
};

}  // namespace baton
