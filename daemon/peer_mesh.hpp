// The control channel: one persistent, authenticated TCP connection to every other node. The node with
// the lower id dials; the other accepts. Lost connections are re-dialled with exponential backoff.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <vector>

#include "core/protocol.hpp"
#include "daemon/auth.hpp"
#include "daemon/config.hpp"
#include "daemon/datapath.hpp"
#include "daemon/event_loop.hpp"
#include "daemon/log_limit.hpp"

namespace baton {

class PeerMesh {
 public:
  using MessageHandler = std::function<void(NodeId from, const proto::Message& m)>;
  // unreached (down only): flows whose HANDOFF_REQUEST never wholly left this host (its last bytes were
  // still in our buffers, never sent). The peer cannot have decoded them, and never will (the connection
  // is closed with a reset, which discards what is unsent), so they may go elsewhere. (A request the
  // peer's kernel did not acknowledge proves nothing: the acknowledgement may be what got lost.)
  using PeerHandler = std::function<void(NodeId node, bool up, const std::vector<FlowKey>& unreached)>;
  using LoadProvider = std::function<uint32_t()>;

  // worker: which of the node's workers (Config::workers) this mesh is; it listens and dials on the
  // control ports plus that number, and talks to the same worker of every peer.
  PeerMesh(const Config& cfg, EventLoop& loop, MessageHandler on_message, PeerHandler on_peer,
           LoadProvider load, uint32_t worker = 0);
  ~PeerMesh();
  PeerMesh(const PeerMesh&) = delete;
  PeerMesh& operator=(const PeerMesh&) = delete;

  Status start();
  void stop();
  // False when the peer is not connected and authenticated: the message is not sent. Except FLOW_CLOSED,
  // which must arrive: kept and sent at the next connection, as are those a dropped connection may have
  // lost (not acknowledged by the peer's kernel; a duplicate does no harm).
  bool send(NodeId to, const proto::Message& m);
  bool reachable(NodeId node) const;
  uint32_t load(NodeId node) const;
  // Load reports (heartbeats) received from the node so far.
  uint64_t load_reports(NodeId node) const;
  // Draining: the node (this one or a peer, as its heartbeats say) takes no new handoffs while another
  // node can serve them. request_drain works from any node: a peer's is relayed to it.
  bool draining(NodeId node) const;
  // Its kernel has acknowledged nothing of what was sent it for timeouts.peer_stall_ms: dispatch treats it
  // as draining (another holder first) until it acknowledges again or is down.
  bool stalled(NodeId node, uint64_t now_ms);
  void set_draining(bool on);
  Status request_drain(NodeId node, bool on);
  void tick(uint64_t now_ms);
  // The node list changed (a reload): new nodes are dialled, removed ones retired.
  void reconfigure();
  nlohmann::json status() const;

 private:
  struct Connection;
  struct Peer {
    NodeId id = 0;
    Connection* conn = nullptr;  // authenticated connection, if any
    uint64_t next_dial_ms = 0;
    uint64_t backoff_ms = 100;
    uint32_t load = 0;
    uint64_t load_reports = 0;
    bool draining = false;
    bool retired = false;  // no longer in the config (a reload): kept while connected, never redialled
    uint64_t connects = 0;
    std::string last_error;
    std::vector<proto::FlowClosed> undelivered;  // sent at the next connection
  };
  static constexpr size_t kMaxUndelivered = 100'000;

  uint16_t port_of(const NodeConfig& n) const;
  proto::Hello hello(const Nonce& nonce) const;
  void dial(Peer& p, uint64_t now_ms);
  void accept_ready();
  void on_event(Connection* c, uint32_t events);
  void on_readable(Connection* c);
  void handle(Connection* c, const proto::Message& m);
  void queue(Connection* c, const proto::Message& m);
  void flush(Connection* c);
  void flush_queued();
  // Handoff requests that have left this host are none of drop()'s business any more.
  void forget_sent(Connection* c);
  // FLOW_CLOSEDs the peer's kernel acknowledged have arrived: none of drop()'s business any more.
  void forget_delivered(Connection* c);
  void keep_undelivered(Peer& p, const proto::FlowClosed& m);
  void drop(Connection* c, const std::string& why);
  // Closes a connection for what it sent, with a rate-limited warning.
  void reject(Connection* c, const std::string& why);

  const Config& cfg_;
  uint32_t worker_;
  EventLoop& loop_;
  MessageHandler on_message_;
  PeerHandler on_peer_;
  LoadProvider load_;
  int listen_fd_ = -1;
  std::map<NodeId, Peer> peers_;
  std::map<int, std::unique_ptr<Connection>> conns_;
  std::vector<int> queued_;  // connections with messages to write at the end of the round
  LogLimiter reject_log_;
  uint64_t last_heartbeat_ms_ = 0;
  bool draining_ = false;
};

}  // namespace baton
