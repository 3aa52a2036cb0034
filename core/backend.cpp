#include "core/backend.hpp"

#include "core/packet_build.hpp"

namespace baton {

const char* be_state_name(BeState s) {
  switch (s) {
    case BeState::kSynReplayed:
      return "syn-replayed";
    case BeState::kEstablished:
      return "established";
    case BeState::kQuiescing:
      return "quiescing";
    case BeState::kQuiesced:
      return "quiesced";
    case BeState::kClosed:
      return "closed";
  }
  return "unknown";
}

size_t Backend::live_flows() const {
  size_t n = 0;
  for (const auto& [k, f] : flows_)
    n += f.state != BeState::kClosed;
  return n;
}

namespace {

proto::HandoffAck refusal(const FlowKey& flow, proto::Refusal why) {
  proto::HandoffAck a;
  a.flow = flow;
  a.refusal = why;
  return a;
}

// The client's SYN as our stack must see it: addressed to us, and offering only what the front end
// granted (the client will never see our SYN/ACK, so it must not expect anything the front end refused).
// TCP Fast Open cookies are only valid for the host that made them: always strip them.
Bytes replayable_syn(const proto::HandoffRequest& req, uint32_t service_addr) {
  Bytes syn = req.syn;
  auto pkt = TcpPacket::parse(syn);
  if (!pkt) return {};
  pkt->set_daddr(service_addr);
  const TcpOptions o = pkt->options();
  if (o.timestamp_off && !(req.granted_options & proto::granted::kTimestamps)) {
    pkt->nop_option(o.timestamp_off - 2, 10);
  }
  if (o.fast_open_off) pkt->nop_option(o.fast_open_off, o.fast_open_len);
  // NOPs keep every option where it was, so the offsets taken above stay right.
  if (o.sack_permitted_off && !(req.granted_options & proto::granted::kSack))
    pkt->nop_option(o.sack_permitted_off, 2);
  if (o.window_scale_off && !(req.granted_options & proto::granted::kWindowScale)) {
    pkt->nop_option(o.window_scale_off, 3);
  }
  syn.resize(pkt->bytes().size());
  return syn;
}

}  // namespace

Backend::Iter Backend::forget(Iter it, Actions& out) {
  out.push_back(ForgetFlow{FlowRole::kBackend, it->first});
  return flows_.erase(it);
}

void Backend::adopt(const FlowKey& key, NodeId frontend, const Translation& xlate, uint64_t now_ms) {
  BeFlow f;
  f.local_key = key;
  f.frontend_key = {key.saddr, xlate.frontend_addr, key.sport, key.dport};
  f.frontend = frontend;
  f.state = BeState::kEstablished;
  f.xlate = xlate;
  f.request.isn1 = xlate.isn1;
  f.last_ms = now_ms;
  flows_[key] = std::move(f);
}

Actions Backend::adopt_local_socket(const AdoptLocalSocket& a, uint64_t now_ms) {
  Actions out;
  auto it = flows_.find(a.key);
  if (it != flows_.end()) forget(it, out);  // a lingering earlier connection on the tuple
  BeFlow f;
  f.local_key = a.key;
  f.frontend_key = a.key;
  f.frontend = cfg_.self;
  f.state = BeState::kEstablished;
  f.xlate = a.xlate;
  f.request.isn1 = a.xlate.isn1;
  f.client_isn = a.client_isn;
  f.client_next = a.client_isn + 1;
  f.own_socket = true;
  f.last_ms = now_ms;
  flows_[a.key] = std::move(f);
  out.push_back(offload_backend(a.key, a.xlate));
  return out;
}

Actions Backend::on_new_connection(const FlowKey& key) {
  Actions out;
  auto it = flows_.find(key);
  // A flow that ended and lingers is over whatever its front end (a client reusing its port at once: it
  // has no TIME_WAIT when the server closed first). Of our own flows, the client starts a connection only
  // on a tuple it no longer uses: whatever we still hold of the old one (its close may have passed
  // unseen) is over too. A replay in progress is the front end's own doing for the current connection.
  if (it == flows_.end()) return out;
  const BeFlow& f = it->second;
  if (f.state == BeState::kClosed || (f.frontend == cfg_.self && f.state != BeState::kSynReplayed))
    forget(it, out);
  return out;
}

void Backend::touch(const FlowKey& key, uint64_t last_ms) {
  auto it = flows_.find(key);
  if (it != flows_.end() && last_ms > it->second.last_ms) it->second.last_ms = last_ms;
}

Actions Backend::on_handoff_request(NodeId from, const proto::HandoffRequest& req, uint64_t now_ms) {
  Bytes syn_copy = req.syn;
  Bytes ack_copy = req.ack;
  auto syn = TcpPacket::parse(syn_copy);
  auto ack = TcpPacket::parse(ack_copy);
  bool valid = syn && ack && syn->has(tcp_flag::kSyn) && !syn->has(tcp_flag::kAck) &&
               ack->has(tcp_flag::kAck) && syn->key() == req.flow && ack->key() == req.flow &&
               ack->ack() == req.isn1 + 1 && ack->seq() == syn->seq() + 1 &&
               req.flow.dport == cfg_.service_port;
  if (!valid) {
    ++counters_.handoffs_refused;
    return {SendMessage{from, refusal(req.flow, proto::Refusal::kBadRequest)}};
  }
  FlowKey local{req.flow.saddr, cfg_.service_addr, req.flow.sport, cfg_.service_port};
  auto it = flows_.find(local);
  if (it != flows_.end()) {
    if (it->second.state != BeState::kClosed) {
      ++counters_.handoffs_refused;
      return {SendMessage{from, refusal(req.flow, proto::Refusal::kDuplicate)}};
    }
    Actions gone;
    forget(it, gone);  // a lingering old connection from the same port: the new one replaces it
  }
  if (flows_.size() >= cfg_.max_flows) {
    ++counters_.handoffs_refused;
    return {SendMessage{from, refusal(req.flow, proto::Refusal::kOverloaded)}};
  }
  BeFlow f;
  f.local_key = local;
  f.frontend_key = req.flow;
  f.frontend = from;
  f.request = req;
  f.replayed_syn = replayable_syn(req, cfg_.service_addr);
  f.client_isn = syn->seq();
  f.client_next = syn->seq() + 1 + static_cast<uint32_t>(req.request.size());
  f.last_ms = now_ms;
  f.deadline_ms = now_ms + cfg_.syn_retry_ms;
  // Watched before the SYN is injected: the datapath must capture the stack's answer.
  Actions out{WatchFlow{FlowRole::kBackend, local}, InjectLocal{f.replayed_syn}};
  flows_[local] = std::move(f);
  sweep_.note(local);
  return out;
}

void Backend::replay_established(BeFlow& f, Actions& out) {
  Translation to_self = f.xlate;
  to_self.backend_addr = cfg_.service_addr;
  Bytes ack = f.request.ack;
  auto pkt = TcpPacket::parse(ack);
  rewrite_client_to_backend(to_self, *pkt);
  // A zero window: our stack answers nothing until the front end has switched the flow over (its first
  // forwarded packet, a pure ACK with the client's real window, opens it). Until then the client,
  // waiting for its answer, sends nothing, so nothing of the flow is left on the front end's slow path
  // when its kernel path takes over: no packet can overtake another on the way here (PAWS would drop
  // it). The window opens long before our stack's first zero-window probe (one RTO, at least 200 ms).
  pkt->set_window(0);
  const Bytes& data = f.request.request;
  // The first request segment completes the handshake itself (an ACK carrying data, as a client's would
  // after a lost bare ACK): one packet less through our stack per handoff. A bare ACK only for an
  // empty request.
  if (data.empty()) out.push_back(InjectLocal{ack});
  uint32_t seq = pkt->seq();
  for (size_t off = 0; off < data.size(); off += cfg_.replay_segment_bytes) {
    size_t n = std::min(cfg_.replay_segment_bytes, data.size() - off);
    bool last = off + n == data.size();
    out.push_back(InjectLocal{
        make_data_segment(ack, seq + static_cast<uint32_t>(off), ByteView(data).subspan(off, n), last)});
  }
}

Actions Backend::on_local_packet(PacketId id, ByteView bytes, uint64_t now_ms) {
  Bytes copy(bytes.begin(), bytes.end());
  auto pkt = TcpPacket::parse(copy);
  if (!pkt) return {accept(id)};
  auto it = flows_.find(pkt->key().reversed());
  if (it == flows_.end()) return {accept(id)};
  BeFlow& f = it->second;
  f.last_ms = now_ms;
  Actions out;

  if (f.state == BeState::kSynReplayed) {
    // Our stack's answer to the replayed SYN: it must never reach the client, who already has one.
    out.push_back(drop(id));
    const FlowKey key = it->first;
    // A reset answering our SYN (which carries no ACK) has sequence number 0 (RFC 793). Any other is the
    // last word of an earlier socket on the tuple (this connection's own, let go when it moved away and
    // came back), still in the queue behind its destruction: not an answer.
    if (pkt->has(tcp_flag::kRst) && pkt->seq() != 0) return out;
    Actions more = pkt->has(tcp_flag::kRst)   ? on_replay_refused(key, now_ms)
                   : pkt->has(tcp_flag::kSyn) ? on_synack_captured(key, SynAckFacts::of(*pkt), now_ms)
                                              : on_replay_blocked(key, now_ms);
    out.insert(out.end(), more.begin(), more.end());
    return out;
  }

  if (f.silent) {
    // Moving to another node: the client must hear nothing more from here (a window update, the web
    // server's FIN).
    out.push_back(drop(id));
    return out;
  }
  // Established or lingering: the reply goes straight to the client, dressed as the front end's.
  const CloseState before = f.close;
  f.close.on_server(pkt->flags(), pkt->seq() + pkt->seq_len(), pkt->ack());
  rewrite_backend_to_client(f.xlate, *pkt);
  copy.resize(pkt->bytes().size());
  ++counters_.packets_rewritten;
  // What the packet tells of the close first (NoteClose): once it goes on, the answer to it (the client's
  // ACK of our FIN) may pass the tc programs before user space has written anything more.
  close_changed(f, before, now_ms, out);
  out.push_back(accept_modified(id, std::move(copy)));
  return out;
}

Actions Backend::on_client_packet(PacketId id, ByteView bytes, uint64_t now_ms) {
  Actions out;
  Bytes copy(bytes.begin(), bytes.end());
  // The close first, as for our replies: the stack's ACK of a client's FIN leaves through tc egress within
  // the verdict, and tc must know the FIN by then to see it acknowledged (or the flow waits for idle_ms).
  if (auto pkt = TcpPacket::parse(copy)) observe_client_packet(*pkt, now_ms, out);
  out.push_back(accept(id));
  return out;
}

Actions Backend::on_delivered_client_packet(ByteView bytes, uint64_t now_ms) {
  // Released by user space into the stack (this node is the flow's front end too): tc never saw it.
  Actions out;
  Bytes copy(bytes.begin(), bytes.end());
  if (auto pkt = TcpPacket::parse(copy)) observe_client_packet(*pkt, now_ms, out);
  return out;
}

bool Backend::observe_client_packet(const TcpPacket& pkt, uint64_t now_ms, Actions& out) {
  auto it = flows_.find(pkt.key());
  if (it == flows_.end()) return false;
  BeFlow& f = it->second;
  f.last_ms = now_ms;
  uint32_t end = pkt.seq() + pkt.seq_len();
  if (seq_before(f.client_next, end)) f.client_next = end;
  const CloseState before = f.close;
  f.close.on_client(pkt.flags(), end, pkt.ack());
  close_changed(f, before, now_ms, out);
  return true;
}

void Backend::close_changed(BeFlow& f, const CloseState& before, uint64_t now_ms, Actions& out) {
  if (f.close == before) return;
  if (f.close.reset) f.close_reason = proto::CloseReason::kReset;
  // The tc programs may see the rest of this close (they are attached, or will be): they learn this part.
  out.push_back(NoteClose{f.local_key, f.close});
  track_close(f, now_ms, out);
}

Actions Backend::merge_close(const FlowKey& key, const CloseState& seen, uint64_t now_ms) {
  Actions out;
  auto it = flows_.find(key);
  if (it == flows_.end()) return out;
  BeFlow& f = it->second;
  f.close.merge(seen);
  if (f.close.reset) f.close_reason = proto::CloseReason::kReset;
  track_close(f, now_ms, out);
  return out;
}

Actions Backend::refuse_replay(const FlowKey& key, proto::Refusal why) {
  auto it = flows_.find(key);
  if (it == flows_.end() || it->second.state != BeState::kSynReplayed) return {};
  ++counters_.handoffs_refused;
  Actions out{SendMessage{it->second.frontend, refusal(it->second.frontend_key, why)}};
  forget(it, out);
  return out;
}

Actions Backend::on_replay_refused(const FlowKey& key, uint64_t /*now_ms*/) {
  return refuse_replay(key, proto::Refusal::kNoListener);
}

Actions Backend::on_untracked(const FlowKey& key) {
  return refuse_replay(key, proto::Refusal::kOverloaded);
}

Actions Backend::on_replay_blocked(const FlowKey& key, uint64_t now_ms) {
  auto it = flows_.find(key);
  if (it == flows_.end() || it->second.state != BeState::kSynReplayed) return {};
  BeFlow& f = it->second;
  // A few times at most, in case the tuple cannot be cleared (a kernel without SOCK_DESTROY): then the
  // retry timer ends in a refusal. A live connection there is found by the replay itself (a collision).
  if (f.replays_blocked >= 3) return {};
  ++f.replays_blocked;
  ++counters_.replays_blocked;
  f.deadline_ms = now_ms + (cfg_.syn_retry_ms << f.syn_retries);
  return {ReplayOnClearTuple{key, f.replayed_syn}};
}

Actions Backend::on_replay_collided(const FlowKey& key, uint64_t now_ms) {
  auto it = flows_.find(key);
  if (it == flows_.end() || it->second.state != BeState::kSynReplayed) return {};
  (void)now_ms;
  ++counters_.handoffs_refused;
  // Nothing of the replay reached the other connection (its stack only answered with ACKs): the front
  // end can still serve the request itself.
  Actions out{SendMessage{it->second.frontend, refusal(it->second.frontend_key, proto::Refusal::kDuplicate)}};
  forget(it, out);
  return out;
}

Actions Backend::on_synack_captured(const FlowKey& key, const SynAckFacts& synack, uint64_t now_ms) {
  auto it = flows_.find(key);
  if (it == flows_.end() || it->second.state != BeState::kSynReplayed) return {};
  BeFlow& f = it->second;
  if (synack.ack != f.client_isn + 1) return {};  // not the answer to our SYN; the retry timer resends it
  f.last_ms = now_ms;
  Translation& t = f.xlate;
  t.frontend_addr = f.frontend_key.daddr;
  t.backend_addr = cfg_.service_addr;
  t.isn1 = f.request.isn1;
  t.isn2 = synack.seq;
  t.timestamps = (f.request.granted_options & proto::granted::kTimestamps) && synack.tsval;
  uint32_t ts_base = synack.tsval.value_or(0);
  if (t.timestamps) {
    Bytes ack_copy = f.request.ack;
    auto ack = TcpPacket::parse(ack_copy);
    t.ts_offset = ack->tsecr().value_or(ts_base) - ts_base;
  }
  t.frontend_wscale = f.request.frontend_wscale;
  t.backend_wscale = synack.wscale.value_or(0);
  f.state = BeState::kEstablished;
  // Offloaded before the replay: the stack's answers to it must already be translated.
  Actions out{offload_backend(key, t)};
  replay_established(f, out);
  proto::HandoffAck ack;
  ack.flow = f.frontend_key;
  ack.isn2 = t.isn2;
  ack.ts_base = ts_base;
  ack.backend_wscale = t.backend_wscale;
  out.push_back(SendMessage{f.frontend, ack});
  ++counters_.handoffs_accepted;
  return out;
}

Actions Backend::on_datapath_closed(const FlowKey& key, bool reset, uint64_t now_ms) {
  auto it = flows_.find(key);
  if (it == flows_.end()) return {};
  BeFlow& f = it->second;
  if (reset) f.close_reason = proto::CloseReason::kReset;
  Actions out;
  track_close(f, now_ms, out, true);
  return out;
}

void Backend::track_close(BeFlow& f, uint64_t now_ms, Actions& out, bool datapath_says) {
  if (!live(f)) return;
  if (!datapath_says && !f.close.closed(f.own_socket)) return;
  f.state = BeState::kClosed;
  f.deadline_ms = now_ms + cfg_.linger_ms;
  ++counters_.flows_closed;
  out.push_back(SendMessage{f.frontend, proto::FlowClosed{f.frontend_key, f.close_reason}});
}

void Backend::abort_flow(BeFlow& f, proto::CloseReason reason, bool tell_frontend, Actions& out) {
  // Reset our own socket as the client would, so that nothing is left half-open here.
  out.push_back(InjectLocal{make_reset(f.local_key, f.client_next)});
  if (tell_frontend) out.push_back(SendMessage{f.frontend, proto::FlowClosed{f.frontend_key, reason}});
  if (f.state != BeState::kClosed) ++counters_.flows_closed;
  f.state = BeState::kClosed;
}

Actions Backend::on_flow_closed(NodeId from, const proto::FlowClosed& msg, uint64_t now_ms) {
  FlowKey local{msg.flow.saddr, cfg_.service_addr, msg.flow.sport, cfg_.service_port};
  auto it = flows_.find(local);
  if (it == flows_.end() || it->second.frontend != from) return {};
  Actions out;
  if (msg.reason == proto::CloseReason::kMigrated && it->second.state == BeState::kQuiesced) {
    // The flow lives on elsewhere. The kernel's reset when the socket goes is dropped (the flow is
    // silenced), so the client never learns; our web server sees its connection end. The silence
    // lingers for stray packets, then goes.
    BeFlow& f = it->second;
    out.push_back(AbortLocalSocket{f.local_key});
    ++counters_.flows_moved;
    f.state = BeState::kClosed;
    f.deadline_ms = now_ms + cfg_.linger_ms;
    return out;
  }
  if (it->second.state != BeState::kClosed) abort_flow(it->second, msg.reason, false, out);
  (void)now_ms;
  forget(it, out);
  return out;
}

Actions Backend::on_quiesce(NodeId from, const proto::Quiesce& msg, uint64_t now_ms) {
  FlowKey local{msg.flow.saddr, cfg_.service_addr, msg.flow.sport, cfg_.service_port};
  auto it = flows_.find(local);
  if (it == flows_.end() || it->second.frontend != from) {
    if (msg.resume) return {};
    ++counters_.quiesce_failed;
    return {SendMessage{from, proto::Quiesced{msg.flow, false, 0, 0}}};
  }
  BeFlow& f = it->second;
  Actions out;
  if (msg.resume) {
    if (f.state == BeState::kQuiescing || f.state == BeState::kQuiesced) {
      f.state = BeState::kEstablished;
      f.silent = false;
      out.push_back(offload_backend(f.local_key, f.xlate));
    }
    return out;
  }
  if (f.state != BeState::kEstablished || f.close.client_fin || f.close.server_fin) {
    ++counters_.quiesce_failed;
    out.push_back(SendMessage{from, proto::Quiesced{msg.flow, false, 0, 0}});
    return out;
  }
  f.state = BeState::kQuiescing;
  sweep_.note(f.local_key);
  f.deadline_ms = now_ms + cfg_.quiesce_timeout_ms;
  // Silent first, then look: whatever the socket sends after the look is dropped, so "everything
  // acknowledged" stays true. If the look finds bytes in flight, the flow talks again until the next.
  out.push_back(SilenceFlow{f.local_key});
  out.push_back(ProbeSocket{f.local_key});
  return out;
}

Actions Backend::on_socket_probe(const FlowKey& key, const SocketProbe& probe, uint64_t now_ms) {
  auto it = flows_.find(key);
  if (it == flows_.end() || it->second.state != BeState::kQuiescing) return {};
  BeFlow& f = it->second;
  Actions out;
  const bool alive = probe.found && probe.established;
  // The answer to the last request is out and acknowledged: the web server read every byte it was given
  // and has sent data since the last arrived (not merely the answer before it, with this request's not
  // written yet), and nothing it wrote is unsent or unacknowledged. A socket that never sent data has
  // answered nothing, whatever its send clock says (set when the connection was accepted, which for a
  // replayed one is the same millisecond its request arrived).
  const bool answered =
      probe.unread == 0 && probe.bytes_acked > 0 && probe.since_sent_ms <= probe.since_received_ms;
  if (alive && answered && probe.unacked == 0 && probe.notsent == 0) {
    end_quiesce(f, true, probe, out);
  } else if (!alive || now_ms >= f.deadline_ms) {
    end_quiesce(f, false, probe, out);  // closing or gone (it stays, and ends, here), or out of time
  } else {
    out.push_back(offload_backend(f.local_key, f.xlate));  // in flight: talk on, look again
  }
  return out;
}

void Backend::end_quiesce(BeFlow& f, bool ok, const SocketProbe& probe, Actions& out) {
  proto::Quiesced q{f.frontend_key, ok, 0, 0};
  if (ok) {
    f.state = BeState::kQuiesced;
    f.silent = true;
    ++counters_.flows_quiesced;
    // Our sequence space continues the client's view from isn1 (translate.hpp); bytes_acked counts from
    // the SYN/ACK on, modulo 2^32 like every sequence number.
    q.server_next = f.xlate.isn1 + 1 + static_cast<uint32_t>(probe.bytes_acked);
    q.client_next = f.client_isn + 1 + static_cast<uint32_t>(probe.bytes_received);
  } else {
    f.state = BeState::kEstablished;
    f.silent = false;
    ++counters_.quiesce_failed;
    out.push_back(offload_backend(f.local_key, f.xlate));
  }
  out.push_back(SendMessage{f.frontend, q});
}

Actions Backend::on_peer_down(NodeId node, uint64_t now_ms) {
  // Established flows keep going: the client's packets still arrive through the front end's datapath,
  // which does not need the control channel. Only replays in progress are abandoned.
  Actions out;
  for (auto it = flows_.begin(); it != flows_.end();) {
    if (it->second.frontend == node && it->second.state == BeState::kSynReplayed) {
      abort_flow(it->second, proto::CloseReason::kAborted, false, out);
      it = forget(it, out);
    } else {
      ++it;
    }
  }
  (void)now_ms;
  return out;
}

Actions Backend::on_peer_lost_flows(NodeId node, uint64_t now_ms) {
  Actions out;
  for (auto it = flows_.begin(); it != flows_.end();) {
    BeFlow& f = it->second;
    if (f.frontend == node && f.state == BeState::kSynReplayed) {
      abort_flow(f, proto::CloseReason::kAborted, false, out);
      it = forget(it, out);
      continue;
    }
    if (f.frontend == node && live(f)) {
      // Our kernel resets the client (its reset is translated here as usual) and frees the socket.
      out.push_back(AbortLocalSocket{f.local_key});
      ++counters_.flows_closed;
      f.state = BeState::kClosed;
      f.deadline_ms = now_ms + cfg_.linger_ms;
    }
    ++it;
  }
  return out;
}

Actions Backend::on_tick(uint64_t now_ms) {
  Actions out;
  sweep_.run(
      flows_, now_ms,
      [](const BeFlow& f) { return f.state != BeState::kEstablished && f.state != BeState::kClosed; },
      [&](Iter it) { return tick_flow(it, now_ms, out); });
  return out;
}

Backend::Iter Backend::tick_flow(Iter it, uint64_t now_ms, Actions& out) {
  BeFlow& f = it->second;
  bool erase = false;
  switch (f.state) {
    case BeState::kSynReplayed:
      if (now_ms >= f.deadline_ms) {
        if (f.syn_retries < cfg_.syn_retries) {
          ++f.syn_retries;
          f.deadline_ms = now_ms + (cfg_.syn_retry_ms << f.syn_retries);
          // Unanswered: something on the tuple may be swallowing it silently (a TIME_WAIT or a live
          // connection whose ACKs a datapath did not report), so the retry checks the tuple first.
          out.push_back(ReplayOnClearTuple{it->first, f.replayed_syn});
        } else {
          ++counters_.handoffs_refused;
          out.push_back(SendMessage{f.frontend, refusal(f.frontend_key, proto::Refusal::kNoListener)});
          erase = true;
        }
      }
      break;
    case BeState::kQuiescing:
      // Still bytes in flight at the last look: look again (silent first, as in on_quiesce).
      out.push_back(SilenceFlow{f.local_key});
      out.push_back(ProbeSocket{f.local_key});
      break;
    case BeState::kQuiesced:
      // The front end moves the flow within its handoff timeout, or calls the move off; a front end
      // that never says either (its channel lost) leaves it here: serve it again.
      if (now_ms >= f.deadline_ms + cfg_.quiesce_timeout_ms) {
        f.state = BeState::kEstablished;
        f.silent = false;
        out.push_back(offload_backend(f.local_key, f.xlate));
      }
      break;
    case BeState::kEstablished:
      if (now_ms >= f.last_ms + cfg_.idle_timeout_ms) {
        // The kernel resets the client (at its own next sequence number, which only it knows; the reset
        // is translated like any reply, so the flow lingers). abort_flow's reset of the socket as the
        // client covers sockets the kernel no longer resets (already closed by the server).
        out.push_back(AbortLocalSocket{f.local_key});
        abort_flow(f, proto::CloseReason::kIdle, true, out);
        f.deadline_ms = now_ms + cfg_.linger_ms;
      }
      break;
    case BeState::kClosed:
      erase = now_ms >= f.deadline_ms;
      break;
  }
  return erase ? forget(it, out) : std::next(it);
}

}  // namespace baton
