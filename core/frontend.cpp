#include "core/frontend.hpp"

#include <algorithm>

#include "core/answer_here.hpp"
#include "core/http_peek.hpp"
#include "core/packet_build.hpp"

namespace baton {

const char* fe_state_name(FeState s) {
  switch (s) {
    case FeState::kSynSeen:
      return "syn-seen";
    case FeState::kSynAckSeen:
      return "synack-seen";
    case FeState::kHolding:
      return "holding";
    case FeState::kHandoffPending:
      return "handoff-pending";
    case FeState::kForwarding:
      return "forwarding";
    case FeState::kNextHolding:
      return "holding-next";
    case FeState::kQuiescing:
      return "quiescing";
    case FeState::kClosed:
      return "closed";
  }
  return "unknown";
}

size_t Frontend::live_flows() const {
  size_t n = 0;
  for (const auto& [k, f] : flows_)
    n += f.state != FeState::kClosed;
  return n;
}

size_t Frontend::held_request_bytes() const {
  size_t n = 0;
  for (const auto& [k, f] : flows_)
    n += f.held.empty() ? 0 : f.request.held_bytes();
  return n;
}

namespace {
// Everything the segment says went to the back end in the handoff request (which it replays): no FIN or
// RST, and no byte past the request.
bool in_handoff_request(const FeFlow& f, const TcpPacket& pkt) {
  return !pkt.has(tcp_flag::kFin) && !pkt.has(tcp_flag::kRst) &&
         seq_after_eq(f.request_end, pkt.seq() + static_cast<uint32_t>(pkt.payload_size()));
}
}  // namespace

Frontend::Iter Frontend::forget(Iter it, Actions& out) {
  // Served here, or given up before the handshake ended: the local stack has the flow from now on.
  const FeFlow& f = it->second;
  const bool to_stack = f.finished || f.state == FeState::kSynSeen || f.state == FeState::kSynAckSeen ||
                        f.state == FeState::kHolding;
  out.push_back(ForgetFlow{FlowRole::kFrontend, it->first, to_stack});
  return flows_.erase(it);
}

void Frontend::start_flow(FlowKey key, ByteView syn, uint32_t isn, uint64_t now_ms) {
  FeFlow f;
  f.key = key;
  f.syn.assign(syn.begin(), syn.end());
  f.client_isn = isn;
  f.request.reset(isn + 1);
  f.acked_to = isn + 1;
  f.syn_ms = f.last_ms = now_ms;
  f.deadline_ms = now_ms + cfg_.handshake_timeout_ms;
  flows_[key] = std::move(f);
  sweep_.note(key);
  ++counters_.flows_seen;
}

Actions Frontend::on_client_packet(PacketId id, ByteView bytes, uint64_t now_ms, bool starts_request) {
  Bytes copy(bytes.begin(), bytes.end());
  auto parsed = TcpPacket::parse(copy);
  if (!parsed) {
    // A flow we track: our stack has no socket for a handed-off one and would reset the client's
    // connection; tc ingress drops such a packet alike (BATON_DROP_MALFORMED). Any other is not ours to
    // judge: the local stack drops what it cannot use.
    const auto peek = peek_tcp(bytes);
    if (peek && tracks(peek->key)) {
      ++counters_.malformed_dropped;
      return {drop(id)};
    }
    return {accept(id)};
  }
  TcpPacket& pkt = *parsed;
  auto it = flows_.find(pkt.key());
  if (pkt.has(tcp_flag::kSyn) && !pkt.has(tcp_flag::kAck)) return on_client_syn(id, pkt, it, now_ms);
  if (it == flows_.end()) return {accept(id)};
  FeFlow& f = it->second;
  f.last_ms = now_ms;
  Actions out;
  switch (f.state) {
    case FeState::kSynSeen:
      // We never saw our own SYN/ACK (so we do not know what the client was promised): stay out of it.
      out.push_back(accept(id));
      f.finished = true;
      break;
    case FeState::kSynAckSeen:
      on_handshake_ack(f, id, pkt, now_ms, out);
      break;
    case FeState::kHolding:
      on_held_segment(f, id, pkt, now_ms, out);
      break;
    case FeState::kHandoffPending:
      on_pending_segment(f, id, pkt, out);
      break;
    case FeState::kForwarding:
      if (starts_request) {
        // The kernel moved the boundary on past the requests it sent on itself.
        f.watch_requests = true;
        f.next_request = pkt.seq();
      }
      if (at_request_boundary(f, pkt)) {
        on_next_request_segment(f, id, pkt, now_ms, out);
      } else {
        forward(f, id, pkt.bytes(), out);
      }
      break;
    case FeState::kNextHolding:
    case FeState::kQuiescing:
      on_next_held_segment(f, id, pkt, now_ms, out);
      break;
    case FeState::kClosed:
      forward(f, id, pkt.bytes(), out);
      break;
  }
  if (f.finished) forget(it, out);
  return out;
}

Actions Frontend::on_client_syn(PacketId id, const TcpPacket& pkt, Iter it, uint64_t now_ms) {
  Actions out;
  const FlowKey key = pkt.key();
  bool new_connection =
      it == flows_.end() || it->second.client_isn != pkt.seq() || it->second.state == FeState::kClosed;
  if (!new_connection) {
    // A retransmitted SYN: the local stack answers it again until the client's ACK is held.
    FeFlow& f = it->second;
    f.last_ms = now_ms;
    bool before_ack = f.state == FeState::kSynSeen || f.state == FeState::kSynAckSeen;
    out.push_back(before_ack ? accept(id) : drop(id));
    if (!before_ack) ++counters_.duplicates_dropped;
    return out;
  }
  if (it != flows_.end()) {
    if (it->second.state == FeState::kForwarding || it->second.state == FeState::kHandoffPending) {
      // The client reuses the port for a new connection: the old one is over on the back end too.
      out.push_back(SendMessage{it->second.backend, proto::FlowClosed{key, proto::CloseReason::kCancelled}});
    }
    for (const auto& h : it->second.held)
      out.push_back(drop(h.id));
    forget(it, out);
  }
  if (flows_.size() >= cfg_.max_flows) {
    ++counters_.table_full;
    out.push_back(accept(id));  // untracked: the local server answers
    return out;
  }
  start_flow(key, pkt.bytes(), pkt.seq(), now_ms);
  // Watched before the SYN goes on: the datapath must know the flow when the stack answers.
  out.push_back(WatchFlow{FlowRole::kFrontend, key});
  out.push_back(accept(id));
  return out;
}

void Frontend::on_handshake_ack(FeFlow& f, PacketId id, const TcpPacket& pkt, uint64_t now_ms, Actions& out) {
  if (pkt.has(tcp_flag::kRst) || !pkt.has(tcp_flag::kAck) || pkt.ack() != f.isn1 + 1) {
    out.push_back(accept(id));
    if (pkt.has(tcp_flag::kRst)) f.finished = true;
    return;
  }
  f.state = FeState::kHolding;
  // The segment may carry the request too, even a later part of it (the bare ACK was lost, or absorbed
  // by the kernel datapath, and segments reordered): the ACK the back end replays sits before any data.
  f.ack = bare_ack(pkt, f.client_isn + 1);
  f.client_tsval = pkt.tsval().value_or(0);
  f.deadline_ms = now_ms + cfg_.hold_timeout_ms;
  hold(f, id, pkt.bytes());
  f.request.add(pkt.seq(), pkt.payload());
  try_decide(f, now_ms, out);
  if (pkt.has(tcp_flag::kFin)) finish_on_fin(f, pkt.seq() + static_cast<uint32_t>(pkt.payload_size()), out);
}

void Frontend::on_held_segment(FeFlow& f, PacketId id, const TcpPacket& pkt, uint64_t now_ms, Actions& out) {
  if (pkt.has(tcp_flag::kRst)) {
    // The client gave up: let the local stack see everything in order, and reset.
    hold(f, id, pkt.bytes());
    serve_locally(f, out);
    return;
  }
  if (pkt.has(tcp_flag::kFin)) {
    // A client that half-closes after its request (HTTP/1.0 style) is still routed by it: the FIN is held
    // with the request and follows it. Without a whole request, nothing more will come.
    hold(f, id, pkt.bytes());
    f.request.add(pkt.seq(), pkt.payload());
    try_decide(f, now_ms, out);
    finish_on_fin(f, pkt.seq() + static_cast<uint32_t>(pkt.payload_size()), out);
    return;
  }
  if (!hold_request_bytes(f, id, pkt, out)) return;
  try_decide(f, now_ms, out);
  if (f.client_fin) finish_on_fin(f, *f.client_fin, out);  // the segment filled the gap before the FIN
}

bool Frontend::hold_request_bytes(FeFlow& f, PacketId id, const TcpPacket& pkt, Actions& out) {
  if (!f.request.add(pkt.seq(), pkt.payload())) {
    // A retransmission or a duplicate ACK (the answer to our retransmitted SYN/ACK): the held packets
    // already carry everything it says.
    ++counters_.duplicates_dropped;
    out.push_back(drop(id));
    return false;
  }
  hold(f, id, pkt.bytes());
  if (pkt.tsval()) f.client_tsval = *pkt.tsval();
  return true;
}

void Frontend::on_pending_segment(FeFlow& f, PacketId id, const TcpPacket& pkt, Actions& out) {
  // What the client acknowledges tells how far the back end's answer already got to it.
  if (pkt.has(tcp_flag::kAck) && seq_before(f.client_acked, pkt.ack())) f.client_acked = pkt.ack();
  // Data already in the handoff request is a duplicate; anything else waits for the handoff ack.
  if (pkt.payload_size() > 0 && in_handoff_request(f, pkt)) {
    ++counters_.duplicates_dropped;
    out.push_back(drop(id));
    return;
  }
  hold(f, id, pkt.bytes());
}

Actions Frontend::on_local_synack(PacketId id, ByteView bytes, uint64_t now_ms) {
  Bytes copy(bytes.begin(), bytes.end());
  auto pkt = TcpPacket::parse(copy);
  if (!pkt) return {accept(id)};
  const FlowKey key = pkt->key().reversed();
  auto it = flows_.find(key);
  if (it == flows_.end()) return {accept(id)};
  switch (it->second.state) {
    case FeState::kSynSeen:
    case FeState::kSynAckSeen: {
      Actions out = on_synack_seen(key, SynAckFacts::of(*pkt), now_ms);
      out.push_back(accept(id));
      return out;
    }
    default:
      // Holding: a retransmission after the client's ACK (which we hold, so our stack still waits for
      // it): the client is established and needs none; its later TSval would only move the client's
      // timestamp view ahead of what a back end will send. After the handoff the client must hear only
      // the back end.
      return {drop(id)};
  }
}

Actions Frontend::on_synack_seen(const FlowKey& key, const SynAckFacts& facts, uint64_t now_ms) {
  auto it = flows_.find(key);
  if (it == flows_.end()) return {};
  FeFlow& f = it->second;
  if (f.state != FeState::kSynSeen && f.state != FeState::kSynAckSeen) return {};
  if (facts.ack != f.client_isn + 1) return {};  // not the answer to this SYN
  f.last_ms = now_ms;
  f.state = FeState::kSynAckSeen;
  f.isn1 = facts.seq;
  f.granted = 0;
  if (facts.tsval) f.granted |= proto::granted::kTimestamps;
  if (facts.sack_permitted) f.granted |= proto::granted::kSack;
  if (facts.wscale) f.granted |= proto::granted::kWindowScale;
  f.wscale = facts.wscale.value_or(0);
  f.mss = facts.mss.value_or(536);
  f.synack_window = facts.window;
  f.client_acked = facts.seq + 1;
  f.synack_tsval = facts.tsval.value_or(0);
  return {};
}

Actions Frontend::on_triaged(const FlowKey& key, ByteView syn, const SynAckFacts& synack, uint64_t now_ms,
                             bool served_here) {
  Actions out;
  Bytes copy(syn.begin(), syn.end());
  auto pkt = TcpPacket::parse(copy);
  auto it = flows_.find(key);
  if (it != flows_.end()) {
    // An earlier connection on the tuple that the datapath no longer tracks: over.
    for (const auto& h : it->second.held)
      out.push_back(drop(h.id));
    flows_.erase(it);
  }
  if (!pkt || pkt->key() != key || !pkt->has(tcp_flag::kSyn) || flows_.size() >= cfg_.max_flows) {
    if (pkt && flows_.size() >= cfg_.max_flows) ++counters_.table_full;
    // Nothing to decide with: the local stack has the connection once the datapath drained it.
    out.push_back(ForgetFlow{FlowRole::kFrontend, key, true});
    return out;
  }
  start_flow(key, pkt->bytes(), pkt->seq(), now_ms);
  on_synack_seen(key, synack, now_ms);
  FeFlow& f = flows_.at(key);
  if (f.state != FeState::kSynAckSeen) {
    flows_.erase(key);
    out.push_back(ForgetFlow{FlowRole::kFrontend, key, true});
    return out;
  }
  // The kernel counted it served here already; from its next request on it is watched here.
  if (served_here) watch_own_stack(f, out);
  return out;
}

void Frontend::on_untracked(const FlowKey& key) {
  auto it = flows_.find(key);
  if (it == flows_.end() || it->second.state != FeState::kSynSeen) return;
  ++counters_.table_full;
  flows_.erase(it);
}

void Frontend::on_superseded(const FlowKey& key) {
  auto it = flows_.find(key);
  if (it != flows_.end() && it->second.state == FeState::kClosed) flows_.erase(it);
}

void Frontend::adopt(const FlowKey& key, NodeId backend, const Translation& xlate, uint64_t now_ms) {
  FeFlow f;
  f.key = key;
  f.state = FeState::kForwarding;
  f.isn1 = xlate.isn1;
  f.wscale = xlate.frontend_wscale;
  f.backend = backend;
  f.xlate = xlate;
  f.facts.path = "(adopted)";
  f.last_ms = now_ms;
  flows_[key] = std::move(f);
}

void Frontend::touch(const FlowKey& key, uint64_t last_ms) {
  auto it = flows_.find(key);
  if (it != flows_.end() && last_ms > it->second.last_ms) it->second.last_ms = last_ms;
}

void Frontend::try_decide(FeFlow& f, uint64_t now_ms, Actions& out) {
  if (f.request.held_bytes() > cfg_.max_request_bytes) {
    ++counters_.bad_requests;
    serve_locally(f, out);
    return;
  }
  const Bytes& data = f.request.contiguous();
  if (data.empty()) return;
  PeekResult peek = peek_http_request(data, cfg_.max_request_bytes);
  if (peek.status == PeekStatus::kNeedMore) {
    ack_held(f, out);
    return;
  }
  if (peek.status == PeekStatus::kBad) {
    ++counters_.bad_requests;
    out.push_back(Decided{f.key, Decided::kBad, {}, cfg_.self, peek.reason});
    serve_locally(f, out);
    return;
  }
  f.facts = facts_of(peek.head);
  Decision d = dispatcher_.choose(f.facts, peers_, now_ms);
  report(f, Decided::kFirst, d, out);
  if (d.unavailable) {
    answer_unavailable(f, out);
    return;
  }
  note_request_end(f, f.client_isn + 1, peek.head);
  if (d.node == cfg_.self) {
    // Watched on only while where the next request starts can be told: nothing pipelined past this one,
    // no FIN behind it.
    if (f.watch_after && !pipelined(f) && !f.client_fin) {
      serve_here_watched(f, out);
    } else {
      serve_locally(f, out);
    }
    return;
  }
  f.watch_requests = f.watch_after;
  f.next_request = f.next_after;
  start_handoff(f, d.node, now_ms, out);
}

void Frontend::report(const FeFlow& f, Decided::Kind kind, const Decision& d, Actions& out) const {
  if (cfg_.report_decisions) out.push_back(Decided{f.key, kind, f.facts.path, d.node, d.why});
}

void Frontend::ack_held(FeFlow& f, Actions& out) {
  // Only once the request outgrows what a client sends unacknowledged (its initial window): small
  // requests, the common case, need no packet from us.
  const uint32_t end = f.request.contiguous_end();
  const uint32_t held = end - f.request.base();
  if (!cfg_.ack_held_data || held < 4 * 1024 || !seq_before(f.acked_to, end) || held > cfg_.max_request_bytes)
    return;
  // Our ACK, as our stack would send it: our ISN1 + 1, the held bytes, the window we offered, and
  // timestamps in our clock (the SYN/ACK's TSval: never ahead of what the stack or a back end sends later).
  SegmentSpec ack;
  ack.key = f.key.reversed();
  ack.seq = f.isn1 + 1;
  ack.ack = end;
  ack.flags = tcp_flag::kAck;
  ack.window = static_cast<uint16_t>(std::min<uint32_t>(0xffff, uint32_t{f.synack_window} >> f.wscale));
  ack.dont_fragment = true;
  if (f.granted & proto::granted::kTimestamps) ack.timestamps = {f.synack_tsval, f.client_tsval};
  out.push_back(InjectLocal{make_segment(ack)});
  f.acked_to = end;
}

void Frontend::finish_on_fin(FeFlow& f, uint32_t fin_seq, Actions& out) {
  f.client_fin = fin_seq;
  // Segments before the FIN still missing (reordered) may complete the request yet: wait for them.
  if (seq_before(f.request.contiguous_end(), fin_seq)) return;
  if (f.state == FeState::kHolding && !f.finished) serve_locally(f, out);
}

void Frontend::serve_locally(FeFlow& f, Actions& out) {
  ++counters_.served_locally;
  for (auto& h : f.held)
    out.push_back(accept(h.id));
  f.held.clear();
  // A local flow needs no state: packets of unknown flows pass untouched.
  f.finished = true;
}

void Frontend::answer_unavailable(FeFlow& f, Actions& out) {
  ++counters_.answered_unavailable;
  // The request never reaches the web server: batond answers on a socket restored in its place.
  for (auto& h : f.held)
    out.push_back(drop(h.id));
  f.held.clear();
  out.push_back(AnswerHere{repaired_connection(f), unavailable_response(f.facts.head)});
  // Its packets go to the local stack again, where that socket now is.
  f.finished = true;
}

void Frontend::watch_own_stack(FeFlow& f, Actions& out) {
  // A translation that changes nothing: our stack answered the handshake itself.
  Translation& t = f.xlate;
  t = Translation{};
  t.frontend_addr = f.key.daddr;
  t.backend_addr = address_of_(cfg_.self);
  t.isn1 = t.isn2 = f.isn1;
  t.timestamps = (f.granted & proto::granted::kTimestamps) != 0;
  t.frontend_wscale = t.backend_wscale = f.wscale;
  f.backend = cfg_.self;
  f.state = FeState::kForwarding;
  f.watch_requests = true;
  out.push_back(AdoptLocalSocket{f.key, f.xlate, f.client_isn});
}

void Frontend::serve_here_watched(FeFlow& f, Actions& out) {
  ++counters_.served_locally;
  // The back end's flow first (its datapath entry sees the replies from the first one on), then the
  // front end's steady state, then the verdicts (a kernel datapath takes the flow over after them).
  watch_own_stack(f, out);
  f.next_request = f.next_after;
  offload(f, out);
  for (auto& h : f.held)
    out.push_back(accept(h.id));
  f.held.clear();
}

void Frontend::start_handoff(FeFlow& f, NodeId node, uint64_t now_ms, Actions& out, const Bytes* syn) {
  proto::HandoffRequest req;
  req.flow = f.key;
  req.isn1 = f.isn1;
  req.granted_options = f.granted;
  req.frontend_wscale = f.wscale;
  req.frontend_mss = f.mss;
  req.syn = syn ? *syn : f.syn;
  req.ack = f.ack;
  // The request itself: requests pipelined behind it are decided at their own boundaries.
  f.request_end = f.request.contiguous_end();
  if (f.watch_after && seq_before(f.next_after, f.request_end)) f.request_end = f.next_after;
  const Bytes& held = f.request.contiguous();
  req.request.assign(held.begin(),
                     held.begin() + static_cast<std::ptrdiff_t>(f.request_end - f.request.base()));
  f.backend = node;
  f.state = FeState::kHandoffPending;
  f.deadline_ms = now_ms + cfg_.handoff_timeout_ms;
  out.push_back(SendMessage{node, std::move(req)});
}

void Frontend::forward(FeFlow& f, PacketId id, ByteView bytes, Actions& out, bool shut_window) {
  Bytes copy(bytes.begin(), bytes.end());
  auto pkt = TcpPacket::parse(copy);
  if (!pkt) {
    out.push_back(drop(id));
    return;
  }
  rewrite_client_to_backend(f.xlate, *pkt);
  if (shut_window) pkt->set_window(0);
  copy.resize(pkt->bytes().size());
  ++counters_.packets_forwarded;
  out.push_back(accept_modified(id, std::move(copy)));
}

Actions Frontend::on_handoff_ack(NodeId from, const proto::HandoffAck& ack, uint64_t now_ms) {
  Actions out;
  auto it = flows_.find(ack.flow);
  if (it == flows_.end() || it->second.state != FeState::kHandoffPending || it->second.backend != from) {
    // Too late (we already served it ourselves) or unknown: make sure the back end lets go.
    if (ack.refusal == proto::Refusal::kNone) {
      out.push_back(SendMessage{from, proto::FlowClosed{ack.flow, proto::CloseReason::kCancelled}});
    }
    return out;
  }
  FeFlow& f = it->second;
  f.last_ms = now_ms;
  const bool move = f.old_backend != 0;
  if (ack.refusal != proto::Refusal::kNone) {
    ++counters_.handoff_refused;
    if (move) {
      call_off_move(f, now_ms, out);
      return out;
    }
    // Nothing of the connection reached that node's web server: another holder may take it.
    try_another_holder(it, from, now_ms, out);
    return out;
  }
  if (move) {
    ++counters_.migrations;
    ++f.moves;
    // The old back end is silent since it quiesced; now it lets its socket go without a sound.
    out.push_back(SendMessage{f.old_backend, proto::FlowClosed{f.key, proto::CloseReason::kMigrated}});
    f.old_backend = 0;
    f.watch_requests = f.watch_after;
    f.next_request = f.next_after;
  } else {
    ++counters_.handed_off;
    counters_.handoff_latency.add(now_ms - f.syn_ms);
  }
  Translation& t = f.xlate;
  t.frontend_addr = f.key.daddr;
  t.backend_addr = address_of_(from);
  t.isn1 = f.isn1;
  t.isn2 = ack.isn2;
  t.timestamps = (f.granted & proto::granted::kTimestamps) != 0;
  if (t.timestamps) {
    Bytes ack_copy = f.ack;
    auto ack_pkt = TcpPacket::parse(ack_copy);
    t.ts_offset = ack_pkt && ack_pkt->tsecr() ? *ack_pkt->tsecr() - ack.ts_base : 0;
  }
  t.frontend_wscale = f.wscale;
  t.backend_wscale = ack.backend_wscale;
  f.state = FeState::kForwarding;
  offload(f, out);

  // The back end replayed the handshake ACK and the request with a zero window: it sends nothing until
  // this switch is done (Backend::replay_established). Held packets go on in arrival order, with that
  // window kept shut (those the back end replayed are dropped); then one pure ACK with the client's
  // newest numbers and its real window opens it. Until that moment the client, waiting for its answer,
  // has no reason to send anything, so nothing of the flow is left on our slow path when tc takes it
  // over (the gate, bpf/baton_abi.h) and no packet overtakes another on the way (PAWS would drop it).
  // Requests pipelined behind the one handed off stay held, to be decided at their own boundary.
  std::vector<HeldPacket> held = std::move(f.held);
  f.held.clear();
  const bool pipelined =
      f.watch_requests && std::any_of(held.begin(), held.end(), [&f](const HeldPacket& h) {
        Bytes copy = h.bytes;
        auto p = TcpPacket::parse(copy);
        return p && p->payload_size() > 0 &&
               seq_before(f.request_end, p->seq() + static_cast<uint32_t>(p->payload_size()));
      });
  Bytes newest;
  uint32_t client_next = f.request_end;
  bool reset = false;
  for (auto& h : held) {
    auto pkt = TcpPacket::parse(h.bytes);
    if (!pkt) {
      out.push_back(drop(h.id));
      continue;
    }
    const uint32_t end = pkt->seq() + pkt->seq_len();
    if (pipelined && seq_before(f.request_end, end)) {
      newest = strip_payload(*pkt);  // its acknowledgement and window open the back end's all the same
      f.held.push_back(std::move(h));
      continue;
    }
    if (seq_before(client_next, end)) client_next = end;
    reset = reset || pkt->has(tcp_flag::kRst);
    if (in_handoff_request(f, *pkt)) {
      out.push_back(drop(h.id));
    } else {
      forward(f, h.id, h.bytes, out, /*shut_window=*/true);
    }
    newest = strip_payload(*pkt);
  }
  if (!reset && !newest.empty()) {
    auto pkt = TcpPacket::parse(newest);
    pkt->set_seq(client_next);
    pkt->set_flags(tcp_flag::kAck);
    rewrite_client_to_backend(f.xlate, *pkt);
    out.push_back(InjectLocal{std::move(newest)});
  }
  // Our own half-open connection (SYN_RECV, the ACK never reached it) must go: reset it as the client.
  // (A move has none: the connection left this node's stack at its first handoff.)
  if (!move) out.push_back(InjectLocal{make_reset(f.key, f.client_isn + 1)});
  if (!f.held.empty()) {
    f.held_since_ms = now_ms;
    hold_next_from(f, f.request_end, now_ms);
    try_decide_next(f, now_ms, out);
  }
  return out;
}

Frontend::Iter Frontend::try_another_holder(Iter it, NodeId refused, uint64_t now_ms, Actions& out) {
  FeFlow& f = it->second;
  f.refused_by.push_back(refused);
  const PeerView others{[this, &f](NodeId n) {
                          return peers_.reachable(n) &&
                                 std::find(f.refused_by.begin(), f.refused_by.end(), n) == f.refused_by.end();
                        },
                        peers_.load, peers_.reports, peers_.draining};
  const Decision d = dispatcher_.choose(f.facts, others, now_ms);
  report(f, Decided::kRetry, d, out);
  if (d.node != cfg_.self) {
    ++counters_.handoff_retried;
    start_handoff(f, d.node, now_ms, out);
    return std::next(it);
  }
  if (d.unavailable) {
    answer_unavailable(f, out);
  } else {
    serve_locally(f, out);
  }
  return forget(it, out);
}

Actions Frontend::on_flow_closed(NodeId from, const proto::FlowClosed& msg, uint64_t now_ms) {
  auto it = flows_.find(msg.flow);
  if (it == flows_.end() || it->second.backend != from) return {};
  FeFlow& f = it->second;
  if (f.state == FeState::kForwarding || f.state == FeState::kNextHolding || f.state == FeState::kQuiescing) {
    dispatcher_.note_ended(from);
    // Over on the back end: a request still held here has nobody left to answer it.
    Actions out;
    for (const auto& h : f.held)
      out.push_back(drop(h.id));
    f.held.clear();
    f.state = FeState::kClosed;
    f.deadline_ms = now_ms + cfg_.linger_ms;
    out.push_back(EndFlow{FlowRole::kFrontend, f.key});
    return out;
  }
  // While a handoff is pending, a close names an earlier connection from the same client port: the back
  // end answers a handoff request with a handoff ack or a refusal, never with a close, and the two
  // arrive by different paths (the control channel, the client's new SYN), so a late close of the old
  // connection can come after the new one started. Taking it for this one served the request here
  // (for content held elsewhere, a 404). A back end that gave up silently is caught by handoff_ms.
  return {};
}

void Frontend::abort_pending(FeFlow& f, Actions& out) {
  if (f.old_backend != 0) {
    // A move: the old back end is silent, waiting; the connection ends for it too.
    out.push_back(SendMessage{f.old_backend, proto::FlowClosed{f.key, proto::CloseReason::kAborted}});
    f.old_backend = 0;
  }
  // The back end may have taken the connection and answered (its replies go straight to the client):
  // serving it here as well would give the client two answers in one sequence space. Reset it on all
  // sides instead; the client retries on a new connection.
  for (const auto& h : f.held)
    out.push_back(drop(h.id));
  f.held.clear();
  out.push_back(SendMessage{f.backend, proto::FlowClosed{f.key, proto::CloseReason::kCancelled}});
  out.push_back(InjectLocal{make_reset(f.key, f.client_isn + 1)});
  // To the client, in its window: at what it acknowledged last (our ISN1 + 1 or beyond, if the back
  // end's answer got there), as our stack would reset.
  uint32_t seq = seq_before(f.isn1 + 1, f.client_acked) ? f.client_acked : f.isn1 + 1;
  out.push_back(InjectLocal{make_reset(f.key.reversed(), seq)});
  ++counters_.handoffs_aborted;
}

Actions Frontend::on_handoff_unsent(const FlowKey& key, uint64_t now_ms) {
  // The request never left this node: sending it elsewhere, or serving it here, is safe.
  auto it = flows_.find(key);
  if (it == flows_.end() || it->second.state != FeState::kHandoffPending) return {};
  Actions out;
  try_another_holder(it, it->second.backend, now_ms, out);
  return out;
}

Actions Frontend::on_peer_lost_flows(NodeId node, uint64_t now_ms) {
  // The client must learn that its connection is gone, but only the client knows exactly where it
  // stands. Forget the flow, so that its packets reach our own stack again, and nudge the client with an
  // ACK it already has (seq = ISN1, out of its window): it answers with an ACK of where it stands, which
  // our stack, knowing no such connection, answers with a RST at exactly that number.
  Actions out;
  for (auto it = flows_.begin(); it != flows_.end();) {
    FeFlow& f = it->second;
    if (f.backend != node || (f.state != FeState::kForwarding && f.state != FeState::kNextHolding &&
                              f.state != FeState::kQuiescing)) {
      ++it;  // ended flows linger as usual
      continue;
    }
    for (const auto& h : f.held)
      out.push_back(drop(h.id));
    ++counters_.flows_lost;
    const Bytes nudge = make_ack(f.key.reversed(), f.isn1, f.client_isn + 1);
    it = forget(it, out);
    out.push_back(InjectLocal{nudge});
  }
  (void)now_ms;
  return out;
}

Actions Frontend::on_peer_down(NodeId node, uint64_t now_ms, const std::vector<FlowKey>& unreached) {
  Actions out;
  for (auto it = flows_.begin(); it != flows_.end();) {
    FeFlow& f = it->second;
    if (f.backend == node && f.state == FeState::kQuiescing) {
      // Its answer will not come; the flow's packets still reach it through the datapath.
      ++counters_.migrations_refused;
      release_next(f, now_ms, out);
      ++it;
    } else if (f.backend == node && f.state == FeState::kHandoffPending && f.old_backend == 0 &&
               std::find(unreached.begin(), unreached.end(), f.key) != unreached.end()) {
      ++counters_.handoff_unreached;
      it = try_another_holder(it, node, now_ms, out);
    } else if (f.backend == node && f.state == FeState::kHandoffPending) {
      // The request may have reached the back end before its channel went down: abort, never serve
      // the same connection twice.
      ++counters_.handoff_timeouts;
      abort_pending(f, out);
      it = forget(it, out);
    } else {
      ++it;
    }
  }
  return out;
}

Actions Frontend::on_tick(uint64_t now_ms) {
  Actions out;
  sweep_.run(
      flows_, now_ms,
      [](const FeFlow& f) { return f.state != FeState::kForwarding && f.state != FeState::kClosed; },
      [&](Iter it) { return tick_flow(it, now_ms, out); });
  return out;
}

Frontend::Iter Frontend::tick_flow(Iter it, uint64_t now_ms, Actions& out) {
  FeFlow& f = it->second;
  bool erase = false;
  switch (f.state) {
    case FeState::kSynSeen:
    case FeState::kSynAckSeen:
      erase = now_ms >= f.deadline_ms;
      break;
    case FeState::kHolding:
      if (now_ms >= f.deadline_ms) {
        ++counters_.hold_timeouts;
        serve_locally(f, out);
        erase = true;
      }
      break;
    case FeState::kHandoffPending:
      if (now_ms >= f.deadline_ms) {
        ++counters_.handoff_timeouts;
        abort_pending(f, out);
        erase = true;
      }
      break;
    case FeState::kForwarding:
      erase = now_ms >= f.last_ms + cfg_.idle_timeout_ms + cfg_.idle_backstop_ms;
      break;
    case FeState::kNextHolding:
      // Incomplete for too long (or larger than we hold): the node serving the flow gets it as it is.
      if (now_ms >= f.deadline_ms) stop_watching(f, now_ms, out);
      break;
    case FeState::kQuiescing:
      if (now_ms >= f.deadline_ms) {
        // The old back end never answered: it serves on (told to, in case it did stop).
        out.push_back(SendMessage{f.backend, proto::Quiesce{f.key, true}});
        ++counters_.migrations_refused;
        release_next(f, now_ms, out);
      }
      break;
    case FeState::kClosed:
      erase = now_ms >= f.deadline_ms;
      break;
  }
  return erase ? forget(it, out) : std::next(it);
}

}  // namespace baton
