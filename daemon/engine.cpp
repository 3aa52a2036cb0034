#include "daemon/engine.hpp"

#include <spdlog/spdlog.h>

#include <array>
#include <optional>

#include "core/packet_build.hpp"
#include "daemon/event_loop.hpp"
#include "daemon/repaired_socket.hpp"
#include "daemon/sock_diag.hpp"

namespace baton {

namespace {
FrontendConfig frontend_config(const Config& c) {
  FrontendConfig f;
  f.self = c.node_id;
  f.service_port = c.service_port;
  f.hold_timeout_ms = c.hold_timeout_ms;
  f.handoff_timeout_ms = c.handoff_timeout_ms;
  f.idle_timeout_ms = c.idle_timeout_ms;
  f.linger_ms = c.linger_ms;
  f.max_flows = c.max_flows;
  f.report_decisions = spdlog::should_log(spdlog::level::debug);
  return f;
}

BackendConfig backend_config(const Config& c) {
  BackendConfig b;
  b.self = c.node_id;
  b.service_addr = c.self().service_addr;
  b.service_port = c.service_port;
  b.idle_timeout_ms = c.idle_timeout_ms;
  b.linger_ms = c.linger_ms;
  b.max_flows = c.max_flows;
  return b;
}
}  // namespace

Engine::Engine(const Config& cfg, Datapath& datapath)
    : cfg_(cfg),
      datapath_(datapath),
      frontend_(
          frontend_config(cfg), cfg.content,
          PeerView{[this](NodeId n) { return mesh_ && mesh_->reachable(n); },
                   [this](NodeId n) {
                     if (n == cfg_.node_id) return node_load_;
                     return mesh_ ? mesh_->load(n) : 0u;
                   },
                   [this](NodeId n) -> uint64_t {
                     if (n == cfg_.node_id) return load_measures_;
                     return mesh_ ? mesh_->load_reports(n) : 0;
                   },
                   // A stalled peer (nothing acknowledged for peer_stall_ms) is avoided as a draining
                   // one: another holder first, it only when none is left.
                   [this](NodeId n) {
                     return mesh_ && (mesh_->draining(n) || mesh_->stalled(n, monotonic_ms()));
                   }},
          [this](NodeId n) {
            auto it = service_addrs_.find(n);
            return it == service_addrs_.end() ? 0u : it->second;
          },
          cfg.dispatch),
      backend_(backend_config(cfg)),
      started_ms_(monotonic_ms()) {
  remember_addresses();
}

void Engine::remember_addresses() {
  // Added and updated, never removed: a node a reload took out of the list may still acknowledge a
  // handoff sent to it before, and the flow's translation then needs its address (with 0 the flow's
  // packets would go nowhere).
  for (const auto& n : cfg_.nodes)
    service_addrs_[n.id] = n.service_addr;
}

void Engine::on_packet(const DatapathPacket& p) {
  const uint64_t now = monotonic_ms();
  spdlog::trace("packet {} {} bytes", p.direction == Direction::kIngress ? "in" : "out", p.bytes.size());
  const auto peek = peek_tcp(p.bytes);
  if (!peek) {
    datapath_.verdict(accept(p.id));
    return;
  }
  const FlowKey& key = peek->key;
  const uint8_t flags = peek->flags;
  if (p.direction == Direction::kIngress) {
    // A flow the back end replayed for another front end arrives translated already; one this node
    // serves as its own back end (or served: a move took it away) is the front end's, which translates.
    auto be = backend_.flows().find(key);
    const bool bare_syn = (flags & (tcp_flag::kSyn | tcp_flag::kAck)) == tcp_flag::kSyn;
    if (be != backend_.flows().end() && bare_syn) {
      execute(backend_.on_new_connection(key), Origin::kBackend);
      be = backend_.flows().find(key);
    }
    if (be != backend_.flows().end() && be->second.frontend != cfg_.node_id) {
      execute(backend_.on_client_packet(p.id, p.bytes, now), Origin::kBackend);
    } else {
      execute(frontend_.on_client_packet(p.id, p.bytes, now, p.starts_request), Origin::kFrontend);
    }
    return;
  }
  if (backend_.owns_local_packet(key)) {
    execute(backend_.on_local_packet(p.id, p.bytes, now), Origin::kBackend);
  } else if ((flags & (tcp_flag::kSyn | tcp_flag::kAck)) == (tcp_flag::kSyn | tcp_flag::kAck)) {
    execute(frontend_.on_local_synack(p.id, p.bytes, now), Origin::kFrontend);
  } else {
    datapath_.verdict(accept(p.id));
  }
}

void Engine::on_datapath_event(const DatapathEvent& e) {
  const uint64_t now = monotonic_ms();
  spdlog::debug("datapath event {} for {} (seq {} ack {})", static_cast<int>(e.kind), format_key(e.key),
                e.synack.seq, e.synack.ack);
  switch (e.kind) {
    case DatapathEvent::kFrontendSynAck:
      execute(frontend_.on_synack_seen(e.key, e.synack, now), Origin::kFrontend);
      break;
    case DatapathEvent::kFrontendTriaged:
      execute(frontend_.on_triaged(e.key, e.syn, e.synack, now, e.served_here), Origin::kFrontend);
      break;
    case DatapathEvent::kFrontendSuperseded:
      frontend_.on_superseded(e.key);
      break;
    case DatapathEvent::kBackendSynAck:
      execute(backend_.on_synack_captured(e.key, e.synack, now), Origin::kBackend);
      break;
    case DatapathEvent::kBackendRefused:
      execute(backend_.on_replay_refused(e.key, now), Origin::kBackend);
      break;
    case DatapathEvent::kBackendBlocked:
      execute(backend_.on_replay_blocked(e.key, now), Origin::kBackend);
      break;
    case DatapathEvent::kBackendClosed:
      execute(backend_.on_datapath_closed(e.key, e.reset, now), Origin::kBackend);
      break;
  }
}

void Engine::refresh_activity(uint64_t now_ms) {
  if (now_ms < next_activity_refresh_ms_) return;
  next_activity_refresh_ms_ = now_ms + 1000;
  std::vector<std::pair<FlowKey, uint64_t>> seen;
  for (const auto& [key, f] : frontend_.flows()) {
    if (f.state != FeState::kForwarding) continue;
    if (auto t = datapath_.last_activity_ms(FlowRole::kFrontend, key)) seen.emplace_back(key, *t);
  }
  for (const auto& [key, t] : seen)
    frontend_.touch(key, t);
  seen.clear();
  for (const auto& [key, f] : backend_.flows()) {
    if (f.state != BeState::kEstablished) continue;
    if (auto t = datapath_.last_activity_ms(FlowRole::kBackend, key)) seen.emplace_back(key, *t);
  }
  for (const auto& [key, t] : seen)
    backend_.touch(key, t);
}

void Engine::on_message(NodeId from, const proto::Message& m) {
  if (const auto* rs = std::get_if<proto::Restarted>(&m)) {
    if (!rs->flows_kept) {
      const uint64_t now = monotonic_ms();
      Actions fe = frontend_.on_peer_lost_flows(from, now);
      Actions be = backend_.on_peer_lost_flows(from, now);
      if (!fe.empty() || !be.empty())
        spdlog::info("node {}'s batond started without the flows it shared with us: ending them", from);
      execute(std::move(fe), Origin::kFrontend);
      execute(std::move(be), Origin::kBackend);
    }
    return;
  }
  // The same close message serves both directions: a back end reporting a close, a front end
  // cancelling. Each machine takes only what names it (the flow's back end or front end is `from`).
  to_frontend(from, m);
  to_backend(from, m);
}

void Engine::to_frontend(NodeId from, const proto::Message& m) {
  const uint64_t now = monotonic_ms();
  if (const auto* a = std::get_if<proto::HandoffAck>(&m)) {
    if (a->refusal != proto::Refusal::kNone) {
      spdlog::info("handoff of {} refused by node {}: {}", format_key(a->flow), from,
                   proto::refusal_name(a->refusal));
    }
    execute(frontend_.on_handoff_ack(from, *a, now), Origin::kFrontend);
  } else if (const auto* qd = std::get_if<proto::Quiesced>(&m)) {
    execute(frontend_.on_quiesced(from, *qd, now), Origin::kFrontend);
  } else if (const auto* c = std::get_if<proto::FlowClosed>(&m)) {
    execute(frontend_.on_flow_closed(from, *c, now), Origin::kFrontend);
  }
}

void Engine::to_backend(NodeId from, const proto::Message& m) {
  const uint64_t now = monotonic_ms();
  if (const auto* r = std::get_if<proto::HandoffRequest>(&m)) {
    execute(backend_.on_handoff_request(from, *r, now), Origin::kBackend);
  } else if (const auto* q = std::get_if<proto::Quiesce>(&m)) {
    execute(backend_.on_quiesce(from, *q, now), Origin::kBackend);
  } else if (const auto* c = std::get_if<proto::FlowClosed>(&m)) {
    execute(backend_.on_flow_closed(from, *c, now), Origin::kBackend);
  }
}

void Engine::adopt(const std::vector<AdoptedFlow>& flows) {
  auto node_at = [this](uint32_t addr) -> NodeId {
    for (const auto& n : cfg_.nodes) {
      if (n.service_addr == addr) return n.id;
    }
    return 0;
  };
  const uint64_t now = monotonic_ms();
  size_t taken = 0;
  for (const auto& f : flows) {
    // The peer may be this node itself: a flow it serves as its own back end after a move.
    NodeId peer = node_at(f.role == FlowRole::kFrontend ? f.xlate.backend_addr : f.xlate.frontend_addr);
    if (peer == 0) {
      // Left by a differently configured cluster: nobody would ever close it.
      datapath_.program(ForgetFlow{f.role, f.key});
      continue;
    }
    if (f.role == FlowRole::kFrontend) {
      frontend_.adopt(f.key, peer, f.xlate, now);
    } else {
      backend_.adopt(f.key, peer, f.xlate, now);
      if (f.closed) execute(backend_.on_datapath_closed(f.key, f.reset, now), Origin::kBackend);
    }
    ++taken;
  }
  if (taken) spdlog::info("adopted {} handed-off flows from the previous batond", taken);
  flows_adopted_ = taken > 0;
}

void Engine::on_peer(NodeId node, bool up, const std::vector<FlowKey>& unreached) {
  if (up) {
    // Once per peer and process: whether this batond carries on its predecessor's flows.
    if (announced_.insert(node).second) mesh_->send(node, proto::Restarted{flows_adopted_});
    return;
  }
  const uint64_t now = monotonic_ms();
  execute(frontend_.on_peer_down(node, now, unreached), Origin::kFrontend);
  execute(backend_.on_peer_down(node, now), Origin::kBackend);
}

void Engine::measure_load(uint64_t now_ms) {
  if (!measures_load_) {
    node_load_ = gauge_->load.load(std::memory_order_relaxed);
    load_measures_ = gauge_->measures.load(std::memory_order_relaxed);
    return;
  }
  if (now_ms < next_load_ms_) return;
  next_load_ms_ = now_ms + cfg_.heartbeat_ms;
  sock_diag::NetlinkSocket nl;
  auto n = sock_diag::count_established(nl.fd(), cfg_.self().service_addr, cfg_.service_port);
  if (n) {
    node_load_ = *n;
  } else {
    if (!load_warned_)
      spdlog::warn("cannot count the web server's connections ({}): load = handed-off flows", n.error());
    load_warned_ = true;
    node_load_ = static_cast<uint32_t>(backend_.live_flows());
  }
  ++load_measures_;
  if (gauge_) {
    gauge_->load.store(node_load_, std::memory_order_relaxed);
    gauge_->measures.store(load_measures_, std::memory_order_relaxed);
  }
}

void Engine::reconfigure() {
  remember_addresses();
  frontend_.reconfigure(frontend_config(cfg_), cfg_.dispatch);
  backend_.reconfigure(backend_config(cfg_));
}

void Engine::tick(uint64_t now_ms) {
  measure_load(now_ms);
  refresh_activity(now_ms);
  datapath_.tick(now_ms);
  execute(frontend_.on_tick(now_ms), Origin::kFrontend);
  execute(backend_.on_tick(now_ms), Origin::kBackend);
}

void Engine::show_backend(const Bytes& packet) {
  if (backend_.flows().empty()) return;
  const auto peek = peek_tcp(packet);
  if (peek && backend_.owns_client_packet(peek->key))
    execute(backend_.on_delivered_client_packet(packet, monotonic_ms()), Origin::kBackend);
}

namespace {
// Whether an action sends a packet of `key` into this node's stack (a back end's replay).
bool replays(const Action& a, const FlowKey& key) {
  if (const auto* re = std::get_if<ReplayOnClearTuple>(&a)) return re->key == key;
  const auto* inj = std::get_if<InjectLocal>(&a);
  if (!inj) return false;
  const auto peek = peek_tcp(inj->packet);
  return peek && peek->key == key;
}
}  // namespace

Status Engine::switch_datapath(bool attach) {
  if (attach) return datapath_.attach();  // the map entries hold what user space saw (NoteClose)
  if (auto s = datapath_.detach(); !s) return s;
  merge_kernel_closes();
  return Ok{};
}

void Engine::follow_switch(bool attach) {
  datapath_.finish_switch(attach);
  if (!attach) merge_kernel_closes();
}

void Engine::merge_kernel_closes() {
  const uint64_t now = monotonic_ms();
  for (const auto& [key, close] : datapath_.close_states())
    execute(backend_.merge_close(key, close, now), Origin::kBackend);
}

void Engine::log_decision(const Decided& d) {
  static constexpr std::array<const char*, 4> kKind{"request", "next request", "retry", "unreadable request"};
  if (d.kind == Decided::kBad) {
    // The client's input, not ours to fix: a warning, but never a flood of them.
    uint64_t held = 0;
    if (bad_request_log_.allow(monotonic_ms(), &held))
      spdlog::warn("{} from {}: {}; node {}'s web server answers it{}", kKind[d.kind], format_key(d.key),
                   d.why, d.node, LogLimiter::note(held));
    return;
  }
  spdlog::debug("{} of {} for {}: node {} ({})", kKind[d.kind], format_key(d.key), d.path, d.node, d.why);
}

void Engine::execute(Actions actions, Origin origin) {
  ++executing_;
  std::optional<WatchFlow> untracked;  // a flow the datapath had no room for
  for (auto& a : actions) {
    if (untracked && untracked->role == FlowRole::kBackend && replays(a, untracked->key)) continue;
    if (auto* v = std::get_if<Verdict>(&a)) {
      // Shown first: what the back end tells the datapath about it must be there before the stack
      // answers it.
      if (origin == Origin::kFrontend && v->kind == Verdict::kAccept && !v->replacement.empty())
        show_backend(v->replacement);
      datapath_.verdict(*v);
    } else if (auto* inj = std::get_if<InjectLocal>(&a)) {
      if (origin == Origin::kFrontend) show_backend(inj->packet);
      datapath_.inject_local(inj->packet);
    } else if (auto* ad = std::get_if<AdoptLocalSocket>(&a)) {
      execute(backend_.adopt_local_socket(*ad, monotonic_ms()), Origin::kBackend);
    } else if (auto* an = std::get_if<AnswerHere>(&a)) {
      answer_here(*an);
    } else if (const auto* d = std::get_if<Decided>(&a)) {
      log_decision(*d);
    } else if (auto* ab = std::get_if<AbortLocalSocket>(&a)) {
      abort_local_socket(ab->key);
    } else if (auto* pr = std::get_if<ProbeSocket>(&a)) {
      probe_local_socket(pr->key);
    } else if (auto* re = std::get_if<ReplayOnClearTuple>(&a)) {
      replay_on_clear_tuple(*re);
    } else if (auto* s = std::get_if<SendMessage>(&a)) {
      if (s->to == cfg_.node_id) {
        to_self_.emplace_back(origin, std::move(s->message));
        continue;
      }
      if (!mesh_ || !mesh_->send(s->to, s->message)) {
        if (const auto* r = std::get_if<proto::HandoffRequest>(&s->message)) {
          execute(frontend_.on_handoff_unsent(r->flow, monotonic_ms()), Origin::kFrontend);
          continue;
        }
        ++messages_unsent_;
        spdlog::debug("control: node {} unreachable, message dropped", s->to);
      }
    } else if (!datapath_.program(a)) {
      untracked = std::get<WatchFlow>(a);
    }
  }
  datapath_.flush();
  if (untracked && untracked->role == FlowRole::kBackend) {
    execute(backend_.on_untracked(untracked->key), Origin::kBackend);
  } else if (untracked) {
    frontend_.on_untracked(untracked->key);
  }
  if (--executing_ > 0) return;
  // The front end's messages to itself go to its back end and the other way round, in order, after
  // everything that came before them (the actions they cause do not start another round of this).
  ++executing_;
  while (!to_self_.empty()) {
    auto [from, m] = std::move(to_self_.front());
    to_self_.pop_front();
    if (from == Origin::kFrontend) {
      to_backend(cfg_.node_id, m);
    } else if (from == Origin::kBackend) {
      to_frontend(cfg_.node_id, m);
    }
  }
  --executing_;
}

void Engine::probe_local_socket(const FlowKey& key) {
  auto r = probe_tcp_socket(key);
  if (!r) {
    // Without tcp_info nothing can be moved: the flow stays where it is (the probe reads "gone").
    if (!probe_warned_) spdlog::warn("cannot read the socket of {}: {}", format_key(key), r.error());
    probe_warned_ = true;
  }
  execute(backend_.on_socket_probe(key, r ? *r : SocketProbe{}, monotonic_ms()), Origin::kBackend);
}

void Engine::abort_local_socket(const FlowKey& key) {
  auto r = abort_tcp_socket(key, SocketScope::kConnection);
  if (!r) {
    // Without SOCK_DESTROY (CONFIG_INET_DIAG_DESTROY) the client learns of the end at its next segment.
    if (!abort_warned_) spdlog::warn("cannot abort the socket of {}: {}", format_key(key), r.error());
    abort_warned_ = true;
    return;
  }
  spdlog::debug("socket of {}: {}", format_key(key),
                *r == SocketAbort::kAborted ? "aborted" : "none to abort");
}

void Engine::answer_here(const AnswerHere& an) {
  // The stack's half-open connection (a request socket: the handshake's ACK was never released) goes
  // first, silently: the restored socket takes its 4-tuple.
  auto aborted = abort_tcp_socket(an.conn.key, SocketScope::kConnection);
  const Status sent =
      aborted ? answer_on_repaired_socket(an.conn, an.response) : Status(make_error(aborted.error()));
  if (sent) return;
  ++answers_failed_;
  if (!answer_warned_)
    spdlog::warn("cannot answer {} from batond: {}", format_key(an.conn.key), sent.error());
  answer_warned_ = true;
  // The client must not wait for an answer that will not come: a reset where it expects our data.
  datapath_.inject_local(make_reset(an.conn.key.reversed(), an.conn.snd_nxt));
}

void Engine::replay_on_clear_tuple(const ReplayOnClearTuple& re) {
  auto r = abort_tcp_socket(re.key, SocketScope::kTimeWait);
  if (r && *r == SocketAbort::kKept) {
    spdlog::info("handoff of {} refused: the client has a live connection here from the same port",
                 format_key(re.key));
    execute(backend_.on_replay_collided(re.key, monotonic_ms()), Origin::kBackend);
    return;
  }
  if (r && *r == SocketAbort::kAborted) {
    ++time_waits_cleared_;
    spdlog::debug("removed an old TIME_WAIT of {} that held the replayed SYN's tuple", format_key(re.key));
  } else if (!r && !abort_warned_) {
    spdlog::warn("cannot look up the socket of {}: {}", format_key(re.key), r.error());
    abort_warned_ = true;
  }
  datapath_.inject_local(re.syn);
}

nlohmann::json Engine::status() const {
  const auto& fc = frontend_.counters();
  const auto& bc = backend_.counters();
  return {
      {"node_id", cfg_.node_id},
      {"datapath", datapath_.name()},
      {"service", format_endpoint(cfg_.self().service_addr, cfg_.service_port)},
      {"uptime_ms", monotonic_ms() - started_ms_},
      {"live_flows", frontend_.live_flows() + backend_.live_flows()},
      {"load", node_load_},  // connections the web server holds, as heartbeats report it
      {"draining", mesh_ && mesh_->draining(cfg_.node_id)},
      {"frontend",
       {{"live_flows", frontend_.live_flows()},
        {"tracked_flows", frontend_.flows().size()},
        {"flows_seen", fc.flows_seen},
        // Decided here by batond, plus first requests the kernel datapath served without asking it.
        {"served_locally", fc.served_locally + datapath_.served_locally()},
        {"served_locally_by_kernel", datapath_.served_locally()},
        {"handed_off", fc.handed_off},
        {"handoff_refused", fc.handoff_refused},
        {"handoff_retried", fc.handoff_retried},
        {"handoff_unreached", fc.handoff_unreached},
        {"handoff_timeouts", fc.handoff_timeouts},
        {"handoffs_aborted", fc.handoffs_aborted},
        {"bad_requests", fc.bad_requests},
        {"malformed_dropped", fc.malformed_dropped},
        {"hold_timeouts", fc.hold_timeouts},
        {"duplicates_dropped", fc.duplicates_dropped},
        {"packets_forwarded", fc.packets_forwarded},
        {"table_full", fc.table_full},
        {"answered_unavailable", fc.answered_unavailable},
        {"answers_failed", answers_failed_},
        {"flows_lost", fc.flows_lost},
        {"requests_decided", fc.requests_decided},
        {"migrations", fc.migrations},
        {"migrations_refused", fc.migrations_refused},
        {"requests_held_ms", fc.requests_held_ms},
        {"watch_stopped", fc.watch_stopped},
        {"held_request_bytes", frontend_.held_request_bytes()},
        {"handoff_latency_ms",
         {{"bounds", LatencyHistogram::kBoundsMs},
          {"counts", fc.handoff_latency.counts},
          {"sum", fc.handoff_latency.sum_ms},
          {"count", fc.handoff_latency.count}}}}},
      {"backend",
       {{"live_flows", backend_.live_flows()},
        {"tracked_flows", backend_.flows().size()},
        {"handoffs_accepted", bc.handoffs_accepted},
        {"handoffs_refused", bc.handoffs_refused},
        {"replays_blocked", bc.replays_blocked},
        {"time_waits_cleared", time_waits_cleared_},
        {"packets_rewritten", bc.packets_rewritten},
        {"flows_closed", bc.flows_closed},
        {"flows_quiesced", bc.flows_quiesced},
        {"quiesce_failed", bc.quiesce_failed},
        {"flows_moved", bc.flows_moved}}},
      {"control",
       {{"peers", mesh_ ? mesh_->status() : nlohmann::json::array()}, {"messages_unsent", messages_unsent_}}},
      {"datapath_stats", datapath_.stats()},
  };
}

nlohmann::json Engine::flows() const {
  const uint64_t now = monotonic_ms();
  nlohmann::json arr = nlohmann::json::array();
  for (const auto& [k, f] : frontend_.flows()) {
    arr.push_back({{"role", "frontend"},
                   {"client", format_endpoint(k.saddr, k.sport)},
                   {"service", format_endpoint(k.daddr, k.dport)},
                   {"state", fe_state_name(f.state)},
                   {"backend", f.backend},
                   {"path", f.facts.path},
                   {"moves", f.moves},
                   {"idle_ms", now - f.last_ms}});
  }
  for (const auto& [k, f] : backend_.flows()) {
    nlohmann::json j{{"role", "backend"},
                     {"client", format_endpoint(k.saddr, k.sport)},
                     {"service", format_endpoint(f.frontend_key.daddr, f.frontend_key.dport)},
                     {"state", be_state_name(f.state)},
                     {"frontend", f.frontend},
                     {"idle_ms", now - f.last_ms}};
    // The window scales in use: the client applies the front end's, our kernel writes with its own.
    if (f.state != BeState::kSynReplayed)
      j["wscale"] = {{"frontend", f.xlate.frontend_wscale}, {"backend", f.xlate.backend_wscale}};
    arr.push_back(std::move(j));
  }
  return arr;
}

}  // namespace baton
