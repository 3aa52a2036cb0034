// The front end's handoff state machine: every client connection to this node's service address, from
// the SYN until it is either served locally or handed off and its packets forwarded to the back end.
//
//   SYN seen -> SYN/ACK seen (ISN1) -> holding ACK + request -> local (state freed at once)
//                                                            -> handoff pending -> forwarding -> closed
// Multiple handoff (a keep-alive connection's next request belongs elsewhere):
//   forwarding -> holding the next request -> same node: forwarding again
//                                          -> another node: quiescing the old back end -> handoff pending
//                                             (a move) -> forwarding to the new back end
//
// Packets come in with a PacketId; the machine answers with verdicts (possibly much later: a held packet
// is one without a verdict yet), messages for the back end and packets to inject into the local stack.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/actions.hpp"
#include "core/dispatch.hpp"
#include "core/flow_sweep.hpp"
#include "core/http_peek.hpp"
#include "core/packet.hpp"
#include "core/reassembly.hpp"
#include "core/translate.hpp"

namespace baton {

enum class FeState {
  kSynSeen,
  kSynAckSeen,
  kHolding,
  kHandoffPending,
  kForwarding,
  kNextHolding,  // forwarding, with the next request held until it is complete and decided
  kQuiescing,    // ... decided for another node: waiting for the old back end to stop
  kClosed
};
const char* fe_state_name(FeState s);

struct HeldPacket {
  PacketId id = 0;
  Bytes bytes;
};

struct FeFlow {
  FlowKey key;  // client -> this node
  FeState state = FeState::kSynSeen;
  Bytes syn;
  uint32_t client_isn = 0;
  // Learned from our own SYN/ACK: what the client was promised.
  uint32_t isn1 = 0;
  uint8_t granted = 0;  // proto::granted bits
  uint8_t wscale = 0;
  uint16_t mss = 0;
  uint16_t synack_window = 0;  // unscaled, as in our SYN/ACK
  uint32_t synack_tsval = 0;
  uint32_t client_tsval = 0;  // the client's latest TSval, echoed by our own ACKs
  uint32_t acked_to = 0;      // how far our own ACKs of held data went
  uint32_t client_acked = 0;  // the highest acknowledgement from the client (our sequence space)
  Bytes ack;                  // the handshake-completing ACK, headers only
  Reassembly request;
  std::vector<HeldPacket> held;        // verdicts pending, in arrival order
  uint32_t request_end = 0;            // client sequence number past the bytes sent in the handoff request
  std::optional<uint32_t> client_fin;  // the client's FIN arrived while holding, at this sequence number
  // Multiple handoff. Where the next request starts (client sequence number), while that can be told
  // (no request so far with a body of unknown length, nothing pipelined past a decision).
  bool watch_requests = false;
  uint32_t next_request = 0;
  uint32_t next_after = 0;  // where the request being decided ends (watch_after: known)
  bool watch_after = false;
  NodeId move_to = 0;      // kQuiescing: the node the flow goes to
  NodeId old_backend = 0;  // a move in progress (kHandoffPending): the node the flow leaves
  Translation old_xlate;
  uint32_t old_isn1 = 0;
  uint32_t moves = 0;
  std::vector<NodeId> refused_by;  // nodes that refused this flow's first handoff
  uint64_t held_since_ms = 0;
  // The newest server TSval the client echoed while a request was held: the old back end may have
  // sent (a retransmission) after the held segment left the client, and the client's PAWS check then
  // measures the new back end against that one.
  std::optional<uint32_t> newest_tsecr;
  NodeId backend = 0;
  Translation xlate;
  RequestFacts facts;   // what the latest request decided is dispatched by (its path, host, cookie)
  uint64_t syn_ms = 0;  // when the flow began here (its SYN, or its request under kernel triage)
  uint64_t last_ms = 0;
  uint64_t deadline_ms = 0;  // meaning depends on state: hold, handoff or linger limit
  bool finished = false;     // served locally: the flow's state is to be freed
};

struct FrontendConfig {
  NodeId self = 0;
  uint16_t service_port = 80;
  uint64_t handshake_timeout_ms = 10'000;  // SYN seen but no ACK: forget the flow (nothing is held)
  uint64_t hold_timeout_ms = 5'000;        // request incomplete for this long: serve locally
  uint64_t handoff_timeout_ms = 2'000;     // no handoff ack within this: serve locally, cancel remotely
  uint64_t idle_timeout_ms = 600'000;      // forwarding flow without packets: forget it
  // The back end, which sees both directions, decides idleness and resets the client; the front end
  // forgets a forwarding flow on its own only this much later (its back end's message was lost).
  uint64_t idle_backstop_ms = 10'000;
  uint64_t linger_ms = 2'000;  // keep translating late packets after the close
  size_t max_flows = 65'536;
  size_t max_request_bytes = size_t{64} * 1024;
  // Acknowledge held request bytes ourselves, so that a request larger than the client's initial window
  // (about 14 KB: big cookies) keeps coming while we wait for its end.
  bool ack_held_data = true;
  // Emit a Decided action for every decision (for the debug log); off, only unreadable requests are.
  bool report_decisions = false;
};

// Handoff latency: from the client's SYN (under kernel triage, from its request reaching batond: the
// kernel answered the handshake alone) to the back end's acceptance, in the buckets Prometheus shows.
struct LatencyHistogram {
  static constexpr std::array<uint64_t, 12> kBoundsMs{1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000};
  std::array<uint64_t, kBoundsMs.size() + 1> counts{};  // per bucket (not cumulative); the last: above all
  uint64_t sum_ms = 0;
  uint64_t count = 0;
  void add(uint64_t ms) {
    size_t i = 0;
    while (i < kBoundsMs.size() && ms > kBoundsMs[i])
      ++i;
    ++counts[i];
    sum_ms += ms;
    ++count;
  }
};

struct FrontendCounters {
  uint64_t flows_seen = 0;
  uint64_t served_locally = 0;
  uint64_t handed_off = 0;
  uint64_t handoff_refused = 0;
  uint64_t handoff_retried = 0;    // refused (or unreached), then sent to another holder
  uint64_t handoff_unreached = 0;  // pending when the peer went down, and never wholly sent to it
  uint64_t handoff_timeouts = 0;
  uint64_t handoffs_aborted = 0;
  uint64_t bad_requests = 0;
  uint64_t malformed_dropped = 0;  // client packets of tracked flows that do not parse
  uint64_t hold_timeouts = 0;
  uint64_t duplicates_dropped = 0;
  uint64_t packets_forwarded = 0;
  uint64_t table_full = 0;
  uint64_t answered_unavailable = 0;  // requests no node could serve, answered 503 by batond
  uint64_t flows_lost = 0;            // handed-off flows ended because their back end restarted without them
  // Multiple handoff.
  uint64_t requests_decided = 0;    // requests after a connection's first, decided at their boundary
  uint64_t migrations = 0;          // ... that moved their connection to another node
  uint64_t migrations_refused = 0;  // moves that did not happen: the flow stayed (old node answers)
  uint64_t requests_held_ms = 0;    // time those requests were held for their decision, in total
  uint64_t watch_stopped = 0;       // connections whose next request boundary could no longer be told
  LatencyHistogram handoff_latency;
};

class Frontend {
 public:
  using AddressOf = std::function<uint32_t(NodeId)>;
  Frontend(FrontendConfig cfg, const ContentMap& map, PeerView peers, AddressOf address_of,
           DispatchSettings dispatch = {})
      : cfg_(cfg),
        dispatcher_(map, std::move(dispatch), cfg.self),
        peers_(std::move(peers)),
        address_of_(std::move(address_of)) {}

  // A packet from a client to this node's service port, before the local stack sees it.
  // starts_request: a kernel datapath that watched the flow's requests itself (RequestWatch) stopped at
  // this segment: it starts the next request, and the flow's requests are watched from here.
  Actions on_client_packet(PacketId id, ByteView bytes, uint64_t now_ms, bool starts_request = false);
  // A flow whose client packets this front end holds, forwards or translates (not one left to the stack).
  bool tracks(const FlowKey& key) const {
    auto it = flows_.find(key);
    return it != flows_.end() && !it->second.finished;
  }
  // A SYN/ACK that the local stack is sending to a client (held by the datapath until the verdict).
  Actions on_local_synack(PacketId id, ByteView bytes, uint64_t now_ms);
  // The same knowledge when the datapath only reports it (the eBPF datapath sends the SYN/ACK itself).
  // `key` is client -> this node.
  Actions on_synack_seen(const FlowKey& key, const SynAckFacts& facts, uint64_t now_ms);
  // A connection the kernel datapath followed from its SYN until its first request needed a decision
  // (kernel triage): what the flow would have learned from its SYN and SYN/ACK, before its packets come.
  // The datapath tracks the flow already (no WatchFlow); the client's bare handshake ACK was absorbed,
  // so the first packet after this is a request segment, which completes the handshake as well.
  // served_here: the stack has served the connection from its first request on (tc watched it): the
  // packet that follows starts a later request, decided as any (multiple handoff).
  Actions on_triaged(const FlowKey& key, ByteView syn, const SynAckFacts& synack, uint64_t now_ms,
                     bool served_here = false);
  // A new connection came on the tuple of a flow that was over, and the kernel datapath forgot the old
  // flow to follow the new one: its lingering state goes too (nothing for the datapath to do).
  void on_superseded(const FlowKey& key);
  // A configuration reload: timeouts and limits apply from now on (a flow's running deadline stays).
  void reconfigure(const FrontendConfig& cfg, DispatchSettings dispatch) {
    cfg_ = cfg;
    dispatcher_.reconfigure(std::move(dispatch));
  }
  // The datapath found no room to track a new connection (its WatchFlow failed): the local stack has it,
  // as at a full table, and the flow is forgotten.
  void on_untracked(const FlowKey& key);
  // Takes over a flow an earlier batond handed off and left in the kernel datapath (a restart).
  void adopt(const FlowKey& key, NodeId backend, const Translation& xlate, uint64_t now_ms);
  // The datapath saw packets of an offloaded flow (they never came to user space): not idle.
  void touch(const FlowKey& key, uint64_t last_ms);
  Actions on_handoff_ack(NodeId from, const proto::HandoffAck& ack, uint64_t now_ms);
  Actions on_flow_closed(NodeId from, const proto::FlowClosed& msg, uint64_t now_ms);
  // The old back end's answer to a quiesce (multiple handoff).
  Actions on_quiesced(NodeId from, const proto::Quiesced& msg, uint64_t now_ms);
  // The handoff request could not be sent (the peer's channel was down): serve locally after all.
  Actions on_handoff_unsent(const FlowKey& key, uint64_t now_ms);
  // A peer's control channel went down: its pending handoffs will never be answered.
  // unreached: pending handoffs to it that provably never reached it (never wholly sent
  // them): they go to another holder, or are served here, as if refused.
  Actions on_peer_down(NodeId node, uint64_t now_ms, const std::vector<FlowKey>& unreached = {});
  // The back end's batond restarted without its flows: their replies are no longer translated there.
  Actions on_peer_lost_flows(NodeId node, uint64_t now_ms);
  // Timeouts. Flows in a state that lasts milliseconds (a handshake, a decision, a handoff) are looked at
  // every call; every flow (idle ones, lingering ones: the many) once a second.
  Actions on_tick(uint64_t now_ms);

  const std::unordered_map<FlowKey, FeFlow, FlowKeyHash>& flows() const { return flows_; }
  const FrontendCounters& counters() const { return counters_; }
  // Flows not yet closed (lingering ones excluded).
  size_t live_flows() const;
  // Request bytes held while their flows' decisions are pending (first or later requests).
  size_t held_request_bytes() const;

 private:
  using Iter = std::unordered_map<FlowKey, FeFlow, FlowKeyHash>::iterator;
  void start_flow(FlowKey key, ByteView syn, uint32_t isn, uint64_t now_ms);
  // on_client_packet, by what the packet is and the flow's state.
  Actions on_client_syn(PacketId id, const TcpPacket& pkt, Iter it, uint64_t now_ms);
  void on_handshake_ack(FeFlow& f, PacketId id, const TcpPacket& pkt, uint64_t now_ms, Actions& out);
  void on_held_segment(FeFlow& f, PacketId id, const TcpPacket& pkt, uint64_t now_ms, Actions& out);
  void on_pending_segment(FeFlow& f, PacketId id, const TcpPacket& pkt, Actions& out);
  void try_decide(FeFlow& f, uint64_t now_ms, Actions& out);
  // A Decided action for the log, when cfg_.report_decisions.
  void report(const FeFlow& f, Decided::Kind kind, const Decision& d, Actions& out) const;
  // Multiple handoff (frontend_move.cpp).
  bool at_request_boundary(const FeFlow& f, const TcpPacket& pkt) const;
  void on_next_request_segment(FeFlow& f, PacketId id, const TcpPacket& pkt, uint64_t now_ms, Actions& out);
  void on_next_held_segment(FeFlow& f, PacketId id, const TcpPacket& pkt, uint64_t now_ms, Actions& out);
  void try_decide_next(FeFlow& f, uint64_t now_ms, Actions& out);
  // The held next request goes on to the node already serving the flow.
  // With pipelined requests behind it, only the request's own bytes go; the next is held and decided.
  void release_next(FeFlow& f, uint64_t now_ms, Actions& out);
  static bool pipelined(const FeFlow& f);
  // The held segments (what is left of them) wait for the request starting at `boundary` to be decided.
  void hold_next_from(FeFlow& f, uint32_t boundary, uint64_t now_ms);
  void stop_watching(FeFlow& f, uint64_t now_ms, Actions& out);
  // Everything held goes on, in order, to the node serving the flow; it forwards again, watching the next
  // boundary or not.
  void forward_held(FeFlow& f, bool watch, uint64_t now_ms, Actions& out);
  // The flow's steady state goes to the datapath: its translation and where its next request starts.
  static void offload(const FeFlow& f, Actions& out);
  void start_move(FeFlow& f, uint32_t server_next, uint64_t now_ms, Actions& out);
  // A move whose new back end said no: the old one serves on.
  void call_off_move(FeFlow& f, uint64_t now_ms, Actions& out);
  // Where the request at `start` (its head `head`) ends, if that can be told.
  static void note_request_end(FeFlow& f, uint32_t start, const HttpRequestHead& head);
  void serve_locally(FeFlow& f, Actions& out);
  // No node that may serve the request can: batond answers 503 itself (the flow is then gone).
  void answer_unavailable(FeFlow& f, Actions& out);
  // Served by this node's own stack and watched from the next request on (its back end adopts the
  // socket): a later request for another node's content moves the connection there.
  void serve_here_watched(FeFlow& f, Actions& out);
  // The flow is served by this node's own stack, which its back end adopts, and watched.
  void watch_own_stack(FeFlow& f, Actions& out);
  // The first handoff did not happen at `refused` (it said no, or provably never got it): the next
  // reachable holder that has not refused it gets it, or this node serves it (the flow is then gone).
  Iter try_another_holder(Iter it, NodeId refused, uint64_t now_ms, Actions& out);
  // `syn`: the SYN the back end replays, when not the client's own (a move: one moved to the boundary).
  void start_handoff(FeFlow& f, NodeId node, uint64_t now_ms, Actions& out, const Bytes* syn = nullptr);
  // `shut_window`: the client's window reads zero to the back end (while the switch is under way).
  void forward(FeFlow& f, PacketId id, ByteView bytes, Actions& out, bool shut_window = false);
  void ack_held(FeFlow& f, Actions& out);
  void abort_pending(FeFlow& f, Actions& out);
  // The client's FIN (ending at `fin_seq`) arrived while we hold its request: once every byte before it
  // is here, if that did not complete the request, serve locally.
  void finish_on_fin(FeFlow& f, uint32_t fin_seq, Actions& out);
  // Request bytes of a held flow: kept (with the packet, held) unless every byte of them is held already
  // (then the packet is dropped and false returned).
  bool hold_request_bytes(FeFlow& f, PacketId id, const TcpPacket& pkt, Actions& out);
  void hold(FeFlow& f, PacketId id, ByteView bytes) {
    f.held.push_back({id, Bytes(bytes.begin(), bytes.end())});
  }
  // Frees a flow's state, and tells the datapath.
  Iter forget(Iter it, Actions& out);

  FrontendConfig cfg_;
  Dispatcher dispatcher_;
  PeerView peers_;
  AddressOf address_of_;
  std::unordered_map<FlowKey, FeFlow, FlowKeyHash> flows_;
  FlowSweep<FlowKey, FlowKeyHash> sweep_;
  Iter tick_flow(Iter it, uint64_t now_ms, Actions& out);
  FrontendCounters counters_;
};

}  // namespace baton
