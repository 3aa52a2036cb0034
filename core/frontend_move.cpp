// Multiple handoff on the front end: the requests after a keep-alive connection's first are watched at
// their boundary, decided like the first, and the connection moves to another node between two of them
// (docs/design.md, "Moving a connection at a request boundary").
#include <algorithm>

#include "core/frontend.hpp"
#include "core/packet_build.hpp"

namespace baton {

namespace {
// TSval ticks the new back end's clock starts ahead of the newest one the client echoed (1 s at Linux's
// 1 kHz timestamp clock).
constexpr uint32_t kMoveTsAhead = 1000;
}  // namespace

void Frontend::note_request_end(FeFlow& f, uint32_t start, const HttpRequestHead& head) {
  f.watch_after = head.body_length_known;
  f.next_after = start + static_cast<uint32_t>(head.header_bytes) + static_cast<uint32_t>(head.body_bytes);
}

bool Frontend::at_request_boundary(const FeFlow& f, const TcpPacket& pkt) const {
  // A data segment starting exactly where the next request starts. One that straddles the boundary (a
  // retransmission merged with new bytes) or comes past it (the first one lost) is forwarded as it is;
  // a boundary passed that way is lost for this connection (stop_watching on the next segment).
  return f.watch_requests && pkt.payload_size() > 0 && pkt.seq() == f.next_request &&
         !pkt.has(tcp_flag::kRst) && !pkt.has(tcp_flag::kSyn);
}

void Frontend::on_next_request_segment(FeFlow& f, PacketId id, const TcpPacket& pkt, uint64_t now_ms,
                                       Actions& out) {
  f.state = FeState::kNextHolding;
  sweep_.note(f.key);
  f.held_since_ms = now_ms;
  f.deadline_ms = now_ms + cfg_.hold_timeout_ms;
  f.request.reset(f.next_request);
  f.client_fin.reset();
  f.newest_tsecr.reset();
  on_next_held_segment(f, id, pkt, now_ms, out);
}

void Frontend::on_next_held_segment(FeFlow& f, PacketId id, const TcpPacket& pkt, uint64_t now_ms,
                                    Actions& out) {
  if (auto e = pkt.tsecr(); e && (!f.newest_tsecr || seq_before(*f.newest_tsecr, *e))) f.newest_tsecr = e;
  if (pkt.has(tcp_flag::kRst) || pkt.has(tcp_flag::kFin)) {
    // The client is closing: no more requests to route. Everything goes on, in order, where it was.
    hold(f, id, pkt.bytes());
    if (f.state == FeState::kQuiescing) out.push_back(SendMessage{f.backend, proto::Quiesce{f.key, true}});
    stop_watching(f, now_ms, out);
    return;
  }
  if (pkt.payload_size() == 0) {
    // Acknowledgements of the response still in flight: the old back end needs them (to quiesce, too).
    forward(f, id, pkt.bytes(), out);
    return;
  }
  if (!hold_request_bytes(f, id, pkt, out)) return;
  if (pkt.has(tcp_flag::kAck)) {
    // The segment may carry the client's last acknowledgement of the response: the old back end must
    // have it (it cannot quiesce with bytes unacknowledged), the request itself it must not have yet.
    Bytes ack = bare_ack(pkt, pkt.seq());
    auto a = TcpPacket::parse(ack);
    if (a) {
      rewrite_client_to_backend(f.xlate, *a);
      out.push_back(InjectLocal{std::move(ack)});
    }
  }
  if (f.state == FeState::kNextHolding) try_decide_next(f, now_ms, out);
}

void Frontend::try_decide_next(FeFlow& f, uint64_t now_ms, Actions& out) {
  if (f.request.held_bytes() > cfg_.max_request_bytes) {
    stop_watching(f, now_ms, out);
    return;
  }
  const Bytes& data = f.request.contiguous();
  if (data.empty()) return;
  PeekResult peek = peek_http_request(data, cfg_.max_request_bytes);
  if (peek.status == PeekStatus::kNeedMore) return;
  if (peek.status == PeekStatus::kBad) {
    out.push_back(Decided{f.key, Decided::kBad, {}, f.backend, peek.reason});
    stop_watching(f, now_ms, out);  // the web server answers it; where the next one starts is unknown
    return;
  }
  ++counters_.requests_decided;
  f.facts = facts_of(peek.head);
  note_request_end(f, f.request.base(), peek.head);
  // A node that holds the content keeps the connection (a move costs a round trip and a replay); the
  // kernel datapath sends such requests on by the same rule without asking (RequestWatch).
  if (dispatcher_.keeps(f.facts, f.backend)) {
    report(f, Decided::kNext, {f.backend, "held where the connection is"}, out);
    release_next(f, now_ms, out);
    return;
  }
  // This node is a back end like any other: a move to it replays the connection into its own stack.
  const Decision d = dispatcher_.choose(f.facts, peers_, now_ms);
  report(f, Decided::kNext, d, out);
  // Nobody can serve it: the node serving the connection answers it (a 503 would need the connection
  // here first, a move for an error).
  if (d.node == f.backend || d.unavailable) {
    release_next(f, now_ms, out);
    return;
  }
  f.move_to = d.node;
  f.state = FeState::kQuiescing;
  f.deadline_ms = now_ms + cfg_.handoff_timeout_ms;
  out.push_back(SendMessage{f.backend, proto::Quiesce{f.key, false}});
}

bool Frontend::pipelined(const FeFlow& f) {
  // Bytes held past the decided request: the requests after it came before its answer.
  return seq_before(f.next_after, f.request.contiguous_end()) ||
         f.request.held_bytes() > f.request.contiguous().size();
}

void Frontend::release_next(FeFlow& f, uint64_t now_ms, Actions& out) {
  if (!pipelined(f)) {
    f.next_request = f.next_after;
    forward_held(f, f.watch_after, now_ms, out);
    return;
  }
  if (!f.watch_after) {
    forward_held(f, false, now_ms, out);  // where the next one starts is unknown: all of it goes on
    return;
  }
  // Only this request goes on now; the next one is decided at its own boundary, from what is held.
  const uint32_t end = f.next_after;
  std::vector<HeldPacket> rest;
  for (auto& h : f.held) {
    auto p = TcpPacket::parse(h.bytes);
    if (!p) {
      out.push_back(drop(h.id));  // cannot happen (it parsed when held); its verdict is owed all the same
      continue;
    }
    const uint32_t p_end = p->seq() + static_cast<uint32_t>(p->payload_size());
    if (!seq_before(end, p_end) && !p->has(tcp_flag::kFin)) {
      forward(f, h.id, h.bytes, out);
      continue;
    }
    if (seq_before(p->seq(), end)) {
      // Across the boundary: a copy of its part before it goes on now; the segment itself waits (it
      // owes the datapath a verdict, which keeps a kernel datapath's gate shut) and goes on whole
      // later, where the receiver's TCP takes only what it does not have yet.
      Bytes piece = make_data_segment(bare_ack(*p, p->seq()), p->seq(),
                                      p->payload().first(static_cast<uint32_t>(end - p->seq())), true);
      auto q = TcpPacket::parse(piece);
      rewrite_client_to_backend(f.xlate, *q);
      out.push_back(InjectLocal{std::move(piece)});
    }
    rest.push_back(std::move(h));
  }
  f.held = std::move(rest);
  hold_next_from(f, end, now_ms);
  try_decide_next(f, now_ms, out);
}

void Frontend::hold_next_from(FeFlow& f, uint32_t boundary, uint64_t now_ms) {
  counters_.requests_held_ms += now_ms - f.held_since_ms;
  f.next_request = boundary;
  f.request.advance(boundary);
  for (const auto& h : f.held) {  // segments held while a handoff was pending are not in it yet
    Bytes copy = h.bytes;
    auto p = TcpPacket::parse(copy);
    if (!p) continue;
    f.request.add(p->seq(), p->payload());
    if (auto e = p->tsecr(); e && (!f.newest_tsecr || seq_before(*f.newest_tsecr, *e))) f.newest_tsecr = e;
  }
  f.state = FeState::kNextHolding;
  sweep_.note(f.key);
  f.held_since_ms = now_ms;
  f.deadline_ms = now_ms + cfg_.hold_timeout_ms;
}

void Frontend::stop_watching(FeFlow& f, uint64_t now_ms, Actions& out) {
  forward_held(f, false, now_ms, out);
}

void Frontend::forward_held(FeFlow& f, bool watch, uint64_t now_ms, Actions& out) {
  counters_.requests_held_ms += now_ms - f.held_since_ms;
  f.state = FeState::kForwarding;
  f.watch_requests = watch;
  if (!watch) ++counters_.watch_stopped;
  // Before the verdicts: a kernel datapath takes the flow back once they are all given.
  offload(f, out);
  for (auto& h : f.held)
    forward(f, h.id, h.bytes, out);
  f.held.clear();
}

void Frontend::offload(const FeFlow& f, Actions& out) {
  out.push_back(OffloadFlow{FlowRole::kFrontend, f.key, f.xlate,
                            RequestWatch{f.watch_requests, f.next_request, f.backend}});
}

Actions Frontend::on_quiesced(NodeId from, const proto::Quiesced& msg, uint64_t now_ms) {
  Actions out;
  auto it = flows_.find(msg.flow);
  if (it == flows_.end() || it->second.state != FeState::kQuiescing || it->second.backend != from) {
    // Too late (given up on): make sure it serves on.
    if (msg.ok) out.push_back(SendMessage{from, proto::Quiesce{msg.flow, true}});
    return out;
  }
  FeFlow& f = it->second;
  f.last_ms = now_ms;
  if (!msg.ok || msg.client_next != f.next_request) {
    // Bytes of the response still unacknowledged, the connection closing, or the old back end not
    // where we think the client is: the old node answers this request too.
    if (msg.ok) out.push_back(SendMessage{from, proto::Quiesce{f.key, true}});
    ++counters_.migrations_refused;
    release_next(f, now_ms, out);
    return out;
  }
  start_move(f, msg.server_next, now_ms, out);
  return out;
}

void Frontend::start_move(FeFlow& f, uint32_t server_next, uint64_t now_ms, Actions& out) {
  // The new back end gets a connection that starts where the client is: a SYN one before the request,
  // the handshake's ACK at it (acknowledging everything the old back end sent), the request after. Its
  // stack's ISN is then mapped onto the sequence number the client expects next (isn1 = server_next -
  // 1) and its timestamps onto the newest one the client echoes, as for a first handoff.
  const HeldPacket* first = nullptr;
  for (const auto& h : f.held) {
    Bytes copy = h.bytes;
    auto p = TcpPacket::parse(copy);
    if (!first && p && p->has(tcp_flag::kAck) && !seq_before(f.request.base(), p->seq()) &&
        seq_before(f.request.base(), p->seq() + static_cast<uint32_t>(p->payload_size())))
      first = &h;
  }
  Bytes syn = f.syn;
  auto syn_pkt = TcpPacket::parse(syn);
  if (!first || !syn_pkt) {
    out.push_back(SendMessage{f.backend, proto::Quiesce{f.key, true}});
    ++counters_.migrations_refused;
    release_next(f, now_ms, out);
    return;
  }
  syn_pkt->set_seq(f.request.base() - 1);
  syn_pkt->fill_checksums();
  Bytes first_copy = first->bytes;
  Bytes ack = bare_ack(*TcpPacket::parse(first_copy), f.request.base());
  auto ack_pkt = TcpPacket::parse(ack);
  ack_pkt->set_ack(server_next);
  // The new back end's timestamps start from this echo (ts_offset, as for a first handoff): the newest
  // one the client sent, and a little ahead of it, for a last segment of the old back end (a window
  // update) whose echo has not passed here. Timestamps may jump forward, never back (RFC 7323).
  if (ack_pkt->tsecr() && f.newest_tsecr) ack_pkt->set_tsecr(*f.newest_tsecr + kMoveTsAhead);
  ack_pkt->fill_checksums();

  f.old_backend = f.backend;
  f.old_xlate = f.xlate;
  f.old_isn1 = f.isn1;
  f.isn1 = server_next - 1;
  f.ack = ack;
  counters_.requests_held_ms += now_ms - f.held_since_ms;
  start_handoff(f, f.move_to, now_ms, out, &syn);
}

void Frontend::call_off_move(FeFlow& f, uint64_t now_ms, Actions& out) {
  ++counters_.migrations_refused;
  const NodeId old = f.old_backend;
  f.backend = old;
  f.xlate = f.old_xlate;
  f.isn1 = f.old_isn1;
  f.old_backend = 0;
  out.push_back(SendMessage{old, proto::Quiesce{f.key, true}});
  f.held_since_ms = now_ms;  // counted once already
  release_next(f, now_ms, out);
}

}  // namespace baton
