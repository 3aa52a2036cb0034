#include "daemon/peer_mesh.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <spdlog/spdlog.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>

#include "core/stall_watch.hpp"
#include "daemon/socket_probe.hpp"

namespace baton {

namespace {
constexpr uint64_t kMaxBackoffMs = 5'000;
constexpr size_t kMaxOutBuffer = size_t{64} * 1024 * 1024;
}  // namespace

struct PeerMesh::Connection {
  int fd = -1;
  bool connecting = false;  // non-blocking connect in progress
  NodeId dialed = 0;        // the peer we dialled, 0 for an accepted connection
  NodeId peer = 0;          // known after HELLO
  bool authenticated = false;
  Nonce my_nonce{};
  Nonce peer_nonce{};
  proto::Decoder decoder;
  Bytes out;
  size_t out_pos = 0;
  uint64_t queued_bytes = 0;  // since the connection began
  // HANDOFF_REQUESTs that may not have left this host yet: where each ends in the stream.
  std::deque<std::pair<uint64_t, FlowKey>> handoffs;
  // FLOW_CLOSEDs the peer's kernel has not acknowledged yet: where each ends in the stream. Dropped with
  // the connection, they may never have arrived: sent again on the next one.
  std::deque<std::pair<uint64_t, proto::FlowClosed>> closes;
  bool waiting_out = false;  // EPOLLOUT asked for: the socket's buffer was full
  bool in_queued = false;    // in PeerMesh::queued_: written at the end of this round
  uint64_t last_rx_ms = 0;
  StallWatch stall;       // what the peer's kernel has not acknowledged yet, and since when
  bool stalled = false;   // as last checked (PeerMesh::stalled): logged when it changes
  std::string remote;     // ADDR:PORT, for the log
  bool rejected = false;  // closed for what it sent (logged once, by reject)
};

PeerMesh::PeerMesh(const Config& cfg, EventLoop& loop, MessageHandler on_message, PeerHandler on_peer,
                   LoadProvider load, uint32_t worker)
    : cfg_(cfg),
      worker_(worker),
      loop_(loop),
      on_message_(std::move(on_message)),
      on_peer_(std::move(on_peer)),
      load_(std::move(load)) {
  for (const auto& n : cfg_.nodes) {
    if (n.id != cfg_.node_id) peers_[n.id].id = n.id;
  }
}

uint16_t PeerMesh::port_of(const NodeConfig& n) const {
  return static_cast<uint16_t>(n.control_port + worker_);
}

proto::Hello PeerMesh::hello(const Nonce& nonce) const {
  proto::Hello h{cfg_.node_id, nonce};
  h.workers = static_cast<uint8_t>(cfg_.workers);
  h.worker = static_cast<uint8_t>(worker_);
  return h;
}

PeerMesh::~PeerMesh() {
  try {
    stop();
  } catch (const std::exception& e) {  // out of memory while closing: nothing left to tell
    spdlog::warn("control: closing the connections: {}", e.what());
  }
}

Status PeerMesh::start() {
  // Messages queued while a round of events is handled go out together at its end: one write and,
  // with TCP_NODELAY, as few segments as they fit in, instead of one of each per message.
  loop_.at_round_end([this] { flush_queued(); });
  const NodeConfig& self = cfg_.self();
  listen_fd_ = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(self.control_addr);
  a.sin_port = htons(port_of(self));
  if (bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 || listen(listen_fd_, 64) != 0) {
    std::string err = std::strerror(errno);
    close(listen_fd_);
    listen_fd_ = -1;
    return make_error("control channel: cannot listen on " +
                      format_endpoint(self.control_addr, port_of(self)) + ": " + err);
  }
  loop_.add(listen_fd_, EPOLLIN, [this](uint32_t) { accept_ready(); });
  return Ok{};
}

void PeerMesh::stop() {
  while (!conns_.empty())
    drop(conns_.begin()->second.get(), "shutting down");
  if (listen_fd_ >= 0) {
    loop_.remove(listen_fd_);
    close(listen_fd_);
    listen_fd_ = -1;
  }
}

bool PeerMesh::reachable(NodeId node) const {
  auto it = peers_.find(node);
  return it != peers_.end() && it->second.conn != nullptr;
}

uint64_t PeerMesh::load_reports(NodeId node) const {
  auto it = peers_.find(node);
  return it == peers_.end() ? 0 : it->second.load_reports;
}

uint32_t PeerMesh::load(NodeId node) const {
  auto it = peers_.find(node);
  return it == peers_.end() ? 0 : it->second.load;
}

bool PeerMesh::send(NodeId to, const proto::Message& m) {
  auto it = peers_.find(to);
  if (it == peers_.end()) return false;
  if (!it->second.conn) {
    // A flow's end must reach its peer, however late: without it the peer keeps the flow until it idles
    // out (ten minutes), translating a client that left.
    const auto* close = std::get_if<proto::FlowClosed>(&m);
    if (!close) return false;
    keep_undelivered(it->second, *close);
    return true;
  }
  queue(it->second.conn, m);
  return true;
}

void PeerMesh::keep_undelivered(Peer& p, const proto::FlowClosed& m) {
  if (p.undelivered.size() < kMaxUndelivered) p.undelivered.push_back(m);
}

void PeerMesh::dial(Peer& p, uint64_t now_ms) {
  const NodeConfig* n = cfg_.node(p.id);
  p.next_dial_ms = now_ms + p.backoff_ms;
  p.backoff_ms = std::min(p.backoff_ms * 2, kMaxBackoffMs);
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    p.last_error = std::string("socket: ") + std::strerror(errno);
    return;
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(n->control_addr);
  a.sin_port = htons(port_of(*n));
  // Source the connection from our own control address, so that the peer sees who we claim to be.
  sockaddr_in src{};
  src.sin_family = AF_INET;
  src.sin_addr.s_addr = htonl(cfg_.self().control_addr);
  if (bind(fd, reinterpret_cast<sockaddr*>(&src), sizeof(src)) != 0) {
    // Not (yet) our address: dialling from another one would fail authentication at the peer anyway.
    p.last_error = std::string("bind to our control address: ") + std::strerror(errno);
    close(fd);
    return;
  }
  int rc = connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a));
  if (rc != 0 && errno != EINPROGRESS) {
    p.last_error = std::strerror(errno);
    close(fd);
    return;
  }
  auto c = std::make_unique<Connection>();
  c->fd = fd;
  c->connecting = true;
  c->waiting_out = true;  // EPOLLOUT tells that the connect completed
  c->dialed = p.id;
  c->last_rx_ms = now_ms;
  c->remote = format_endpoint(n->control_addr, port_of(*n));
  Connection* raw = c.get();
  conns_[fd] = std::move(c);
  loop_.add(fd, EPOLLIN | EPOLLOUT, [this, raw](uint32_t ev) { on_event(raw, ev); });
}

void PeerMesh::accept_ready() {
  for (;;) {
    sockaddr_in from{};
    socklen_t from_len = sizeof(from);
    int fd = accept4(listen_fd_, reinterpret_cast<sockaddr*>(&from), &from_len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    auto c = std::make_unique<Connection>();
    c->fd = fd;
    c->last_rx_ms = monotonic_ms();
    c->my_nonce = random_nonce();
    c->remote = format_endpoint(ntohl(from.sin_addr.s_addr), ntohs(from.sin_port));
    Connection* raw = c.get();
    conns_[fd] = std::move(c);
    loop_.add(fd, EPOLLIN, [this, raw](uint32_t ev) { on_event(raw, ev); });
    queue(raw, hello(raw->my_nonce));
  }
}

void PeerMesh::on_event(Connection* c, uint32_t events) {
  int fd = c->fd;
  if (c->connecting) {
    int err = 0;
    socklen_t len = sizeof(err);
    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) {
      peers_[c->dialed].last_error = std::strerror(err);
      drop(c, std::string("connect: ") + std::strerror(err));
      return;
    }
    if (!(events & EPOLLOUT)) return;
    c->connecting = false;
    c->my_nonce = random_nonce();
    queue(c, hello(c->my_nonce));
  }
  if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
    on_readable(c);
    if (!conns_.count(fd)) return;
  }
  if (events & EPOLLOUT) flush(c);
}

void PeerMesh::on_readable(Connection* c) {
  int fd = c->fd;
  std::array<uint8_t, size_t{64} * 1024> buf{};
  for (;;) {
    ssize_t n = recv(fd, buf.data(), buf.size(), 0);
    if (n == 0) {
      drop(c, "closed by peer");
      return;
    }
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      drop(c, std::string("recv: ") + std::strerror(errno));
      return;
    }
    c->last_rx_ms = monotonic_ms();
    c->decoder.feed(ByteView(buf.data(), static_cast<size_t>(n)));
    for (;;) {
      auto m = c->decoder.next();
      if (!m) {
        reject(c, "protocol error: " + m.error());
        return;
      }
      if (!m->has_value()) break;
      handle(c, **m);
      if (!conns_.count(fd)) return;
    }
  }
}

void PeerMesh::handle(Connection* c, const proto::Message& m) {
  if (const auto* h = std::get_if<proto::Hello>(&m)) {
    if (c->peer != 0) return reject(c, "second HELLO");
    auto known = peers_.find(h->node_id);
    if (known == peers_.end() || known->second.retired)
      return reject(c, "HELLO from unknown node " + std::to_string(h->node_id));
    if (c->dialed && c->dialed != h->node_id)
      return reject(
          c, "dialled node " + std::to_string(c->dialed) + " answered as " + std::to_string(h->node_id));
    // A flow's worker is a hash of its client's address and port into the worker count (worker_of):
    // only nodes with as many workers hand each other flows the right worker will see.
    if (h->workers != cfg_.workers || h->worker != worker_) {
      const std::string why = "node " + std::to_string(h->node_id) + " runs " + std::to_string(h->workers) +
                              " workers, this node runs " + std::to_string(cfg_.workers) +
                              ": every node needs the same number of workers";
      known->second.last_error = why;  // shown by batonctl nodes on both sides
      return reject(c, why);
    }
    c->peer = h->node_id;
    c->peer_nonce = h->nonce;
    queue(c, proto::Auth{hello_mac(cfg_.secret, cfg_.node_id, c->peer, c->peer_nonce, c->my_nonce)});
    return;
  }
  if (const auto* a = std::get_if<proto::Auth>(&m)) {
    if (c->peer == 0 || c->authenticated) return reject(c, "unexpected AUTH");
    if (!mac_equal(a->mac, hello_mac(cfg_.secret, c->peer, cfg_.node_id, c->my_nonce, c->peer_nonce)))
      return reject(c, "failed authentication (wrong secret?)");
    c->authenticated = true;
    Peer& p = peers_[c->peer];
    if (p.conn && p.conn != c) drop(p.conn, "replaced by a newer connection");
    p.conn = c;
    p.backoff_ms = 100;
    p.last_error.clear();
    ++p.connects;
    spdlog::info("control: node {} connected and authenticated", c->peer);
    queue(c, proto::Heartbeat{load_(), draining_});
    // Flow ends the last connection may have lost, and those sent while there was none.
    for (const auto& close : p.undelivered)
      queue(c, close);
    p.undelivered.clear();
    on_peer_(c->peer, true, {});
    return;
  }
  if (!c->authenticated) return reject(c, "message before authentication");
  if (const auto* hb = std::get_if<proto::Heartbeat>(&m)) {
    Peer& p = peers_[c->peer];
    p.load = hb->live_flows;
    ++p.load_reports;
    if (p.draining != hb->draining)
      spdlog::info("control: node {} {}", c->peer, hb->draining ? "is draining" : "takes handoffs again");
    p.draining = hb->draining;
    return;
  }
  if (const auto* d = std::get_if<proto::Drain>(&m)) {
    if (d->node != cfg_.node_id) {
      spdlog::warn("control: node {} asked node {} to drain through this node: ignored", c->peer, d->node);
      return;
    }
    spdlog::info("control: node {} relays a request to {} this node", c->peer, d->on ? "drain" : "undrain");
    set_draining(d->on);
    return;
  }
  on_message_(c->peer, m);
}

void PeerMesh::queue(Connection* c, const proto::Message& m) {
  Bytes b = proto::encode(m);
  if (c->out.size() - c->out_pos + b.size() > kMaxOutBuffer) return drop(c, "peer is not reading");
  c->out.insert(c->out.end(), b.begin(), b.end());
  c->queued_bytes += b.size();
  c->stall.queued(c->queued_bytes, monotonic_ms());
  if (const auto* r = std::get_if<proto::HandoffRequest>(&m))
    c->handoffs.emplace_back(c->queued_bytes, r->flow);
  if (const auto* f = std::get_if<proto::FlowClosed>(&m)) c->closes.emplace_back(c->queued_bytes, *f);
  if (!c->connecting && !c->waiting_out && !c->in_queued) {
    c->in_queued = true;
    queued_.push_back(c->fd);
  }
}

void PeerMesh::flush_queued() {
  std::vector<int> fds;
  fds.swap(queued_);
  for (int fd : fds) {
    // Dropped meanwhile (or its descriptor reused: flushing that one too does no harm).
    auto it = conns_.find(fd);
    if (it == conns_.end()) continue;
    it->second->in_queued = false;
    if (!it->second->connecting) flush(it->second.get());
  }
}

void PeerMesh::flush(Connection* c) {
  while (c->out_pos < c->out.size()) {
    ssize_t n = ::send(c->fd, c->out.data() + c->out_pos, c->out.size() - c->out_pos, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      return drop(c, std::string("send: ") + std::strerror(errno));
    }
    c->out_pos += static_cast<size_t>(n);
  }
  const bool rest = c->out_pos < c->out.size();
  if (!rest) {
    c->out.clear();
    c->out_pos = 0;
  }
  if (rest != c->waiting_out) {
    c->waiting_out = rest;
    loop_.modify(c->fd, rest ? EPOLLIN | EPOLLOUT : EPOLLIN);
  }
}

void PeerMesh::forget_sent(Connection* c) {
  if (c->handoffs.empty()) return;
  auto unsent = tcp_bytes_unsent(c->fd);
  // Unknown: as good as sent (it may have reached the peer).
  const uint64_t held = unsent ? *unsent + (c->out.size() - c->out_pos) : 0;
  const uint64_t sent = c->queued_bytes - std::min(held, c->queued_bytes);
  while (!c->handoffs.empty() && c->handoffs.front().first <= sent)
    c->handoffs.pop_front();
}

void PeerMesh::forget_delivered(Connection* c) {
  if (c->closes.empty()) return;
  auto acked = tcp_bytes_acked(c->fd);
  if (!acked) return;  // unknown: kept, a duplicate close does no harm
  while (!c->closes.empty() && c->closes.front().first <= *acked)
    c->closes.pop_front();
}

void PeerMesh::reject(Connection* c, const std::string& why) {
  // Anyone who reaches the control port can send anything: a warning, never a flood of them.
  uint64_t held = 0;
  if (reject_log_.allow(monotonic_ms(), &held))
    spdlog::warn("control: {}{}: {}: connection closed{}", c->remote,
                 c->peer ? " (node " + std::to_string(c->peer) + ")" : std::string(), why,
                 LogLimiter::note(held));
  c->rejected = true;
  // A peer we dialled that answers in a way we refuse (another protocol version, a wrong secret): the
  // reason is what `batonctl nodes` shows for it.
  if (c->dialed && peers_.count(c->dialed)) peers_[c->dialed].last_error = why;
  drop(c, why);
}

void PeerMesh::drop(Connection* c, const std::string& why) {
  int fd = c->fd;
  NodeId peer = c->peer ? c->peer : c->dialed;
  bool was_up = false;
  // A reset, not a FIN: our kernel discards what it has not sent, so a request that never left this
  // host can never reach the peer later (with a FIN it would go on trying).
  forget_sent(c);
  forget_delivered(c);
  if (peer && peers_.count(peer) && c->authenticated) {
    for (const auto& [end, close] : c->closes)
      keep_undelivered(peers_[peer], close);
  }
  linger hard{1, 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &hard, sizeof(hard));
  std::vector<FlowKey> unreached;
  for (const auto& [end, flow] : c->handoffs)
    unreached.push_back(flow);
  if (peer && peers_.count(peer) && peers_[peer].conn == c) {
    peers_[peer].conn = nullptr;
    peers_[peer].load = 0;
    was_up = true;
  }
  if (!c->rejected && (c->authenticated || (peer && !c->connecting)))
    spdlog::info("control: connection to node {} dropped: {}", peer, why);
  loop_.remove(fd);
  close(fd);
  conns_.erase(fd);
  if (was_up) on_peer_(peer, false, unreached);
}

void PeerMesh::reconfigure() {
  for (const auto& n : cfg_.nodes) {
    if (n.id == cfg_.node_id) continue;
    Peer& p = peers_[n.id];
    if (p.id == 0) spdlog::info("control: node {} joins the cluster", n.id);
    if (p.retired) spdlog::info("control: node {} is back in the cluster", n.id);
    p.id = n.id;
    p.retired = false;
  }
  for (auto& [id, p] : peers_) {
    if (p.retired || cfg_.node(id)) continue;
    // Its connection stays while it is up, for the flows handed off before (their close notices); it
    // gets no new handoffs (no rule or node list names it), and is not dialled again.
    p.retired = true;
    spdlog::info("control: node {} left the cluster{}", id,
                 p.conn ? ": no new handoffs, its connection stays" : "");
  }
}

void PeerMesh::tick(uint64_t now_ms) {
  for (auto& [id, p] : peers_) {
    if (id < cfg_.node_id || p.conn || p.retired) continue;
    bool dialing = false;
    for (const auto& [fd, c] : conns_)
      dialing |= c->dialed == id;
    if (!dialing && now_ms >= p.next_dial_ms) dial(p, now_ms);
  }
  // At least once a tick, each connection's stall is looked at: logged when it begins, and its marks
  // trimmed while nothing asks for the peer.
  for (auto& [id, p] : peers_)
    stalled(id, now_ms);
  std::vector<Connection*> dead;
  for (auto& [fd, c] : conns_) {
    if (now_ms > c->last_rx_ms + cfg_.peer_down_ms) dead.push_back(c.get());
  }
  for (Connection* c : dead)
    drop(c, "no heartbeat");
  if (now_ms >= last_heartbeat_ms_ + cfg_.heartbeat_ms) {
    last_heartbeat_ms_ = now_ms;
    for (auto& [id, p] : peers_) {
      if (!p.conn) continue;
      forget_sent(p.conn);
      forget_delivered(p.conn);
      queue(p.conn, proto::Heartbeat{load_(), draining_});
    }
  }
}

bool PeerMesh::stalled(NodeId node, uint64_t now_ms) {
  if (!cfg_.peer_stall_ms) return false;
  auto it = peers_.find(node);
  if (it == peers_.end() || !it->second.conn) return false;
  Connection* c = it->second.conn;
  // Only a mark older than the limit costs a look at what the peer's kernel acknowledged since.
  if (c->stall.stalled(now_ms, cfg_.peer_stall_ms)) {
    auto acked = tcp_bytes_acked(c->fd);
    if (acked) {
      c->stall.acked(*acked);
    } else {
      c->stall = StallWatch{};  // unknown: no stall claimed, and no marks left to pile up
    }
  }
  const bool now_stalled = c->stall.stalled(now_ms, cfg_.peer_stall_ms);
  if (now_stalled != c->stalled) {
    c->stalled = now_stalled;
    if (now_stalled)
      spdlog::info(
          "control: node {} has acknowledged nothing for {} ms: new handoffs go to other holders "
          "while there are",
          node, cfg_.peer_stall_ms);
    else
      spdlog::info("control: node {} acknowledges again", node);
  }
  return now_stalled;
}

bool PeerMesh::draining(NodeId node) const {
  if (node == cfg_.node_id) return draining_;
  auto it = peers_.find(node);
  return it != peers_.end() && it->second.draining;
}

void PeerMesh::set_draining(bool on) {
  if (draining_ == on) return;
  draining_ = on;
  spdlog::info("this node {}",
               on ? "drains: no new handoffs while another node can serve them" : "takes handoffs again");
  // At once rather than at the next heartbeat: front ends stop within a round trip.
  for (auto& [id, p] : peers_) {
    if (p.conn) queue(p.conn, proto::Heartbeat{load_(), draining_});
  }
}

Status PeerMesh::request_drain(NodeId node, bool on) {
  if (node == cfg_.node_id) {
    set_draining(on);
    return Ok{};
  }
  auto it = peers_.find(node);
  if (it == peers_.end()) return make_error("node " + std::to_string(node) + " is not in the cluster");
  if (!send(node, proto::Drain{node, on}))
    return make_error("node " + std::to_string(node) + " is not reachable from this node; ask another one");
  return Ok{};
}

nlohmann::json PeerMesh::status() const {
  nlohmann::json arr = nlohmann::json::array();
  for (const auto& [id, p] : peers_) {
    const auto rtt = p.conn ? tcp_rtt_us(p.conn->fd) : Result<uint32_t>(make_error("not connected"));
    arr.push_back({{"id", id},
                   {"connected", p.conn != nullptr},
                   {"rtt_us", rtt ? *rtt : 0},
                   {"load", p.load},
                   {"draining", p.draining},
                   {"retired", p.retired},
                   {"connects", p.connects},
                   {"stalled", p.conn != nullptr && p.conn->stalled},
                   {"last_error", p.last_error}});
  }
  return arr;
}

}  // namespace baton
