// The back end's handoff state machine: replays a handed-off connection into the local TCP stack and
// rewrites its replies so that they go straight to the client as if from the front end.
//
//   handoff request -> SYN replayed -> SYN/ACK captured (ISN2) -> ACK + request replayed -> established
//   -> closing (FIN/RST seen) -> closed (front end told; state lingers briefly, then is freed)
// Multiple handoff: established -> quiescing (until the client acknowledged everything we sent) ->
//   quiesced (silent) -> let go (the flow moved on) or back to established (the move was called off)
#pragma once

#include <cstdint>
#include <unordered_map>

#include "core/actions.hpp"
#include "core/close_state.hpp"
#include "core/flow_sweep.hpp"
#include "core/packet.hpp"
#include "core/translate.hpp"

namespace baton {

enum class BeState { kSynReplayed, kEstablished, kQuiescing, kQuiesced, kClosed };
const char* be_state_name(BeState s);

struct BeFlow {
  FlowKey local_key;     // client -> this node's service address: the replayed connection
  FlowKey frontend_key;  // client -> the front end, as the client sees it
  NodeId frontend = 0;
  BeState state = BeState::kSynReplayed;
  proto::HandoffRequest request;
  Bytes replayed_syn;
  Translation xlate;
  uint32_t client_isn = 0;
  uint32_t client_next = 0;  // highest client sequence number seen, for an in-window reset
  CloseState close;          // what user space saw of the close (the tc programs' view is in their map)
  int syn_retries = 0;
  int replays_blocked = 0;
  uint64_t last_ms = 0;
  uint64_t deadline_ms = 0;  // SYN retry, quiesce or linger limit
  proto::CloseReason close_reason = proto::CloseReason::kFin;
  bool silent = false;  // quiesced, or let go after a move: nothing of it may reach the client any more
  // Accepted by our stack itself (adopt_local_socket): a datapath in user space sees only its FINs and
  // resets, not the bare acknowledgement of the client's FIN.
  bool own_socket = false;
};

struct BackendConfig {
  NodeId self = 0;
  uint32_t service_addr = 0;
  uint16_t service_port = 80;
  uint64_t syn_retry_ms = 250;
  int syn_retries = 3;
  uint64_t idle_timeout_ms = 600'000;
  uint64_t linger_ms = 2'000;
  size_t max_flows = 65'536;
  size_t replay_segment_bytes = size_t{16} * 1024;
  uint64_t quiesce_timeout_ms = 2'000;  // bytes still unacknowledged after this: the flow stays here
};

struct BackendCounters {
  uint64_t handoffs_accepted = 0;
  uint64_t handoffs_refused = 0;
  uint64_t replays_blocked = 0;  // replayed SYNs answered by a bare ACK (an old TIME_WAIT, usually)
  uint64_t packets_rewritten = 0;
  uint64_t flows_closed = 0;
  uint64_t flows_quiesced = 0;  // flows that stopped here for a move to another node
  uint64_t quiesce_failed = 0;  // ... that could not (bytes unacknowledged, closing, unknown)
  uint64_t flows_moved = 0;     // flows let go because they moved on
};

class Backend {
 public:
  explicit Backend(BackendConfig cfg) : cfg_(cfg) {}

  Actions on_handoff_request(NodeId from, const proto::HandoffRequest& req, uint64_t now_ms);
  // Whether a packet from the client side (already translated by the front end) belongs to a replayed
  // connection; if so, on_client_packet handles it.
  bool owns_client_packet(const FlowKey& key) const { return flows_.count(key) != 0; }
  Actions on_client_packet(PacketId id, ByteView bytes, uint64_t now_ms);
  // A client packet of a flow this node serves as its own front end (key client -> this node), as the
  // front end translated it and user space delivered it to the stack (no verdict of ours needed).
  Actions on_delivered_client_packet(ByteView bytes, uint64_t now_ms);
  // Whether a packet the local stack sends belongs to a replayed connection.
  bool owns_local_packet(const FlowKey& key) const { return flows_.count(key.reversed()) != 0; }
  Actions on_local_packet(PacketId id, ByteView bytes, uint64_t now_ms);
  // Inputs from a datapath that handles packets itself and only reports (eBPF). Keys: client -> us.
  Actions on_synack_captured(const FlowKey& key, const SynAckFacts& facts, uint64_t now_ms);
  Actions on_replay_refused(const FlowKey& key, uint64_t now_ms);
  // The datapath found no room to track a flow whose replay was about to start (its WatchFlow failed;
  // the replay was not sent): refused as overloaded.
  Actions on_untracked(const FlowKey& key);
  // Our stack answered the replayed SYN with a bare ACK: a TIME_WAIT holds the 4-tuple (usually).
  Actions on_replay_blocked(const FlowKey& key, uint64_t now_ms);
  // ... but it was a live connection (the client talks to us directly from the same port): refuse.
  Actions on_replay_collided(const FlowKey& key, uint64_t now_ms);
  Actions on_datapath_closed(const FlowKey& key, bool reset, uint64_t now_ms);
  // What the kernel datapath saw of a flow's close while it had the packets (read back when its programs
  // are detached; close_state.hpp): from now on this back end sees the rest.
  Actions merge_close(const FlowKey& key, const CloseState& seen, uint64_t now_ms);
  void touch(const FlowKey& key, uint64_t last_ms);
  // Takes over an established flow an earlier batond left in the kernel datapath (a restart).
  void adopt(const FlowKey& key, NodeId frontend, const Translation& xlate, uint64_t now_ms);
  // Takes a connection our stack accepted itself (this node its front end too) as a flow, with a
  // translation that changes nothing: it can quiesce and move away like a replayed one.
  Actions adopt_local_socket(const AdoptLocalSocket& a, uint64_t now_ms);
  // A new connection's SYN on `key` reached this node: a flow of ours on the tuple that ended and
  // lingers, or one this node served as its own back end, must not translate, track or silence it.
  Actions on_new_connection(const FlowKey& key);
  Actions on_flow_closed(NodeId from, const proto::FlowClosed& msg, uint64_t now_ms);
  // Multiple handoff: the front end wants the flow stopped (or, resume, going on again).
  Actions on_quiesce(NodeId from, const proto::Quiesce& msg, uint64_t now_ms);
  Actions on_socket_probe(const FlowKey& key, const SocketProbe& probe, uint64_t now_ms);
  Actions on_peer_down(NodeId node, uint64_t now_ms);
  // The front end's batond restarted without its flows: client packets are no longer translated there.
  Actions on_peer_lost_flows(NodeId node, uint64_t now_ms);
  Actions on_tick(uint64_t now_ms);
  // A configuration reload: timeouts and limits apply from now on.
  void reconfigure(const BackendConfig& cfg) { cfg_ = cfg; }

  const std::unordered_map<FlowKey, BeFlow, FlowKeyHash>& flows() const { return flows_; }
  const BackendCounters& counters() const { return counters_; }
  size_t live_flows() const;

 private:
  void replay_established(BeFlow& f, Actions& out);
  Actions refuse_replay(const FlowKey& key, proto::Refusal why);
  // Close tracking of a client packet that reaches our stack; false when it is no flow of ours.
  bool observe_client_packet(const TcpPacket& pkt, uint64_t now_ms, Actions& out);
  // Established, quiescing or quiesced: the connection is alive here.
  static bool live(const BeFlow& f) {
    return f.state == BeState::kEstablished || f.state == BeState::kQuiescing ||
           f.state == BeState::kQuiesced;
  }
  void end_quiesce(BeFlow& f, bool ok, const SocketProbe& probe, Actions& out);
  // The flow is over when its close state says so, or the kernel datapath did (datapath_says).
  void track_close(BeFlow& f, uint64_t now_ms, Actions& out, bool datapath_says = false);
  // After a packet changed f.close (it was `before`): tell the kernel datapath, and end the flow if done.
  void close_changed(BeFlow& f, const CloseState& before, uint64_t now_ms, Actions& out);
  void abort_flow(BeFlow& f, proto::CloseReason reason, bool tell_frontend, Actions& out);
  using Iter = std::unordered_map<FlowKey, BeFlow, FlowKeyHash>::iterator;
  Iter forget(Iter it, Actions& out);
  // on_tick for one flow; returns the iterator after it.
  Iter tick_flow(Iter it, uint64_t now_ms, Actions& out);

  BackendConfig cfg_;
  std::unordered_map<FlowKey, BeFlow, FlowKeyHash> flows_;  // by local_key
  FlowSweep<FlowKey, FlowKeyHash> sweep_;
  BackendCounters counters_;
};

}  // namespace baton
