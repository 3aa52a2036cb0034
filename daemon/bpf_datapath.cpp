#include "daemon/bpf_datapath.hpp"

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/membarrier.h>
#include <net/if.h>
#include <spdlog/spdlog.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>

#include "baton_abi.h"
#include "core/worker_hash.hpp"
#include "daemon/bpf_abi_convert.hpp"
#include "daemon/event_loop.hpp"

namespace baton {

namespace {

const char* counter_name(int i) {
  switch (i) {
    case BATON_CNT_FE_FORWARDED:
      return "fe_forwarded";
    case BATON_CNT_FE_FORWARDED_BYTES:
      return "fe_forwarded_bytes";
    case BATON_CNT_FE_SLOW:
      return "fe_slow";
    case BATON_CNT_FE_SYNACK_SEEN:
      return "fe_synack_seen";
    case BATON_CNT_BE_REWRITTEN:
      return "be_rewritten";
    case BATON_CNT_BE_REWRITTEN_BYTES:
      return "be_rewritten_bytes";
    case BATON_CNT_BE_SYNACK_CAPTURED:
      return "be_synack_captured";
    case BATON_CNT_BE_CLIENT_SEEN:
      return "be_client_seen";
    case BATON_CNT_REDIRECT_FAILED:
      return "redirect_failed";
    case BATON_CNT_EVENT_LOST:
      return "event_lost";
    case BATON_CNT_FE_GATE_OPENED:
      return "fe_gate_opened";
    case BATON_CNT_FE_RELEASED:
      return "fe_released";
    case BATON_CNT_FE_TRIAGED:
      return "fe_triaged";
    case BATON_CNT_FE_TRIAGE_LOCAL:
      return "fe_triage_local";
    case BATON_CNT_FE_TRIAGE_SLOW:
      return "fe_triage_slow";
    case BATON_CNT_FE_TRIAGE_FULL:
      return "fe_triage_full";
    case BATON_CNT_FE_REQUEST_KERNEL:
      return "fe_requests_kernel";
    case BATON_CNT_FE_REQUEST_SLOW:
      return "fe_requests_slow";
    case BATON_CNT_FE_WATCH_LOST:
      return "fe_watch_lost";
    case BATON_CNT_FE_OWN_STACK:
      return "fe_own_stack";
    case BATON_CNT_FE_SUPERSEDED:
      return "fe_superseded";
    default:
      return "unknown";
  }
}

const char* drop_reason_name(int i) {
  switch (i) {
    case BATON_DROP_MALFORMED:
      return "malformed";
    case BATON_DROP_REWRITE:
      return "rewrite_failed";
    case BATON_DROP_CAPTURED:
      return "captured";
    case BATON_DROP_SILENCED:
      return "silenced";
    case BATON_DROP_SYNACK_REPEAT:
      return "synack_repeat";
    case BATON_DROP_SYN_REPEAT:
      return "syn_repeat";
    case BATON_DROP_ACK_ABSORBED:
      return "ack_absorbed";
    default:
      return "unknown";
  }
}

}  // namespace

BpfShared::BpfShared(uint32_t n) : workers(n), inbox(n), wake_fd(n, -1), adopted(n) {}

BpfShared::~BpfShared() {
  if (events) ring_buffer__free(events);
}

BpfDatapath::BpfDatapath(BpfDatapathOptions opts, std::shared_ptr<BpfShared> shared, uint32_t worker)
    : opts_(std::move(opts)), shared_(std::move(shared)), worker_(worker), slow_([this] {
        NfqueueOptions n = opts_.nfqueue;
        n.slow_mark = BATON_SLOW_MARK;
        n.done_mark = BATON_DONE_MARK;
        return n;
      }()) {}

BpfDatapath::~BpfDatapath() {
  stop();
}

Status BpfDatapath::start(Handler handler, EventHandler events) {
  on_event_ = std::move(events);
  ifindex_ = static_cast<int>(if_nametoindex(opts_.interface.c_str()));
  if (ifindex_ == 0) return make_error("interface " + opts_.interface + " not found");
  if (first()) {
    BpfLoadOptions lo;
    lo.pin_dir = opts_.pin_dir;
    lo.service_addr = opts_.nfqueue.service_addr;
    lo.service_port = opts_.nfqueue.service_port;
    lo.max_flows = opts_.max_flows;
    lo.node_id = opts_.self;
    auto progs = BpfPrograms::load(lo);
    if (!progs) return make_error(progs.error());
    shared_->progs = std::move(*progs);
    progs_ = shared_->progs.get();
    adopt_pinned_flows();
    load_content();
    shared_->events = ring_buffer__new(progs_->events_fd(), &BpfDatapath::sort_event, shared_.get(), nullptr);
    if (!shared_->events) {
      stop();
      return make_error("cannot open the BPF event ring buffer");
    }
  } else {
    if (!shared_->progs) return make_error("the eBPF programs are not loaded (worker 0 starts first)");
    progs_ = shared_->progs.get();
  }
  // Offloaded flows an earlier batond left, this worker's share: front-end ones need their gate.
  adopted_ = std::move(shared_->adopted[worker_]);
  for (const AdoptedFlow& a : adopted_) {
    if (a.role != FlowRole::kFrontend) continue;
    Gate g;
    g.generation = ++generations_;
    g.handed_off = true;
    g.xlate = a.xlate;
    gates_[a.key] = g;
  }
  wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  {
    std::lock_guard lock(shared_->mu);
    shared_->wake_fd[worker_] = wake_fd_;
  }
  // Events before every queued packet: the SYN/ACK event is always older than the ACK that answers it,
  // and both can arrive within one batch of queue reads.
  auto in_order = [this, handler = std::move(handler)](const DatapathPacket& p) {
    pump_events();
    take_over_triaged(p);
    note_counted(p);
    if (p.direction == Direction::kIngress && (p.mark & BATON_BOUNDARY_MARK)) {
      DatapathPacket at_boundary = p;
      at_boundary.starts_request = true;
      handler(at_boundary);
    } else {
      handler(p);
    }
    flush();
  };
  if (auto s = slow_.start(in_order, nullptr); !s) {
    stop();
    return s;
  }
  // The programs go on once every worker's queue is there (the last worker starts last): before, a
  // packet tc gave a missing queue would pass to the stack.
  if (worker_ + 1 == shared_->workers) {
    if (auto s = progs_->attach(ifindex_); !s) {
      stop();
      return s;
    }
    set_kernel_decisions(true);
  }
  epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  std::vector<int> fds{slow_.fd(), wake_fd_};
  // Worker 0 wakes for new events; it sorts them to the others.
  if (first()) fds.push_back(ring_buffer__epoll_fd(shared_->events));
  for (int fd : fds) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = fd;
    epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev);
  }
  return Ok{};
}

int BpfDatapath::sort_event(void* ctx, void* data, size_t size) {
  auto* shared = static_cast<BpfShared*>(ctx);
  if (size < sizeof(baton_event)) return 0;
  baton_event ev{};
  std::memcpy(&ev, data, sizeof(ev));
  const FlowKey key = from_abi(ev.key);  // client -> this node
  shared->inbox[worker_of(key.saddr, key.sport, shared->workers)].push_back(ev);
  return 0;
}

void BpfDatapath::pump_events() {
  taken_.clear();
  bool others = false;
  {
    std::lock_guard lock(shared_->mu);
    if (shared_->events) ring_buffer__consume(shared_->events);
    taken_.swap(shared_->inbox[worker_]);
    for (uint32_t w = 0; w < shared_->workers; ++w)
      others |= w != worker_ && !shared_->inbox[w].empty();
  }
  if (others) {
    std::lock_guard lock(shared_->mu);
    for (uint32_t w = 0; w < shared_->workers; ++w) {
      if (w == worker_ || shared_->inbox[w].empty() || shared_->wake_fd[w] < 0) continue;
      const uint64_t one = 1;
      [[maybe_unused]] ssize_t n = write(shared_->wake_fd[w], &one, sizeof(one));
    }
  }
  for (const baton_event& ev : taken_)
    handle_event(ev);
}

namespace {

// Every key of a hash map (collected first: deleting while iterating would skip entries).
std::vector<baton_flow_key> keys_of(int fd) {
  std::vector<baton_flow_key> keys;
  baton_flow_key k{};
  baton_flow_key next{};
  const void* prev = nullptr;
  while (bpf_map_get_next_key(fd, prev, &next) == 0) {
    keys.push_back(next);
    k = next;
    prev = &k;
  }
  return keys;
}
}  // namespace

void BpfDatapath::set_runtime_switch(uint32_t which, bool on) {
  uint32_t value = on ? 1 : 0;
  if (bpf_map_update_elem(progs_->runtime_fd(), &which, &value, BPF_ANY) != 0) ++shared_->program_errors;
}

void BpfDatapath::set_kernel_decisions(bool on, bool keep_records) {
  // Triage off first, then empty (tc adds no record meanwhile); on only once empty: no record of an
  // earlier run (or of a time user space carried everything) may meet a connection past its handshake.
  // Request watching needs batond to decide what tc gives it.
  set_runtime_switch(BATON_RT_TRIAGE, false);
  const int fd = progs_->fe_triage_fd();
  if (!keep_records) {
    for (const auto& k : keys_of(fd))
      bpf_map_delete_elem(fd, &k);
  }
  shared_->triage_on = on && opts_.triage && shared_->content_loaded;
  if (shared_->triage_on) set_runtime_switch(BATON_RT_TRIAGE, true);
  set_runtime_switch(BATON_RT_WATCH, on);
}

void BpfDatapath::load_content() {
  // All or nothing: a trie missing a longer rule would let tc serve locally what another node holds.
  shared_->content_loaded = false;
  if (!opts_.triage) return;
  const auto entries = prefix_entries(opts_.content, opts_.self, BATON_PATH_MAX);
  for (const PrefixEntry& e : entries) {
    ContentEntryAbi a = to_abi(e);
    if (int err = bpf_map_update_elem(progs_->content_fd(), &a.key, &a.value, BPF_ANY)) {
      spdlog::warn(
          "bpf: content map entry '{}' not loaded ({}): kernel triage off, batond decides every "
          "connection",
          e.prefix, std::strerror(-err));
      return;
    }
  }
  shared_->content_loaded = true;
}

Status BpfDatapath::update(const DatapathUpdate& u) {
  if (auto s = slow_.update(u); !s) return s;
  if (!u.content) return Ok{};
  opts_.content = *u.content;
  const bool triage_was = opts_.triage;
  opts_.triage = u.kernel_triage;
  if (!progs_ || !first()) return Ok{};  // the kernel's content map is the first worker's to keep
  // In place, longest prefixes first (prefix_entries' order): a new longer rule is in before anything
  // under it changes; then the entries of rules that went. tc judges each lookup by one whole entry.
  // Without triage (or when the map did not load whole) no entry stays: tc then asks batond.
  load_content();
  {
    std::vector<ContentEntryAbi> keep;
    if (shared_->content_loaded) {
      for (const PrefixEntry& e : prefix_entries(opts_.content, opts_.self, BATON_PATH_MAX))
        keep.push_back(to_abi(e));
    }
    const int fd = progs_->content_fd();
    baton_content_key k{}, next{};
    std::vector<baton_content_key> stale;
    const void* prev = nullptr;
    while (bpf_map_get_next_key(fd, prev, &next) == 0) {
      const bool kept = std::any_of(keep.begin(), keep.end(), [&next](const ContentEntryAbi& a) {
        return std::memcmp(&a.key, &next, sizeof(next)) == 0;
      });
      if (!kept) stale.push_back(next);
      k = next;
      prev = &k;
    }
    for (const auto& key : stale)
      bpf_map_delete_elem(fd, &key);
  }
  // Triage switched, or the new map did not load (then batond decides every connection).
  if (triage_was != opts_.triage || shared_->triage_on != (opts_.triage && shared_->content_loaded))
    set_kernel_decisions(progs_->attached());
  return Ok{};
}

void BpfDatapath::take_over_triaged(const DatapathPacket& p) {
  // tc gives batond a connection it followed with the first packet it counts; detached, a connection it
  // followed until then comes with its next packet, uncounted (see detach()).
  const bool counted = (p.mark & BATON_COUNTED_MARK) != 0;
  if (p.direction != Direction::kIngress || (!counted && progs_->attached())) return;
  const auto peek = peek_tcp(p.bytes);
  if (!peek) return;
  // A flow batond has. One that is over (ended, or served here) may have been superseded by a new
  // connection tc triaged on its tuple (BATON_EV_FE_SUPERSEDED, normally read before this packet): then
  // this packet has a triage record.
  auto old = gates_.find(peek->key);
  if (old != gates_.end() && !old->second.local && !old->second.ended) return;
  const baton_flow_key k = to_abi(peek->key);
  baton_fe_triage t{};
  Gate g;
  g.generation = ++generations_;
  if (!counted) {
    // Detached: only a connection tc held for a decision (a request to come, or queued). One it served
    // here and watched stays with the stack, untracked: its next packet need not start a request.
    if (bpf_map_lookup_elem(progs_->fe_triage_fd(), &k, &t) != 0 || (t.flags & BATON_TRIAGE_LOCAL_WATCH))
      return;
  }
  // Read and removed in one syscall (a hash map: kernel 5.14 on).
  const bool has_record = bpf_map_lookup_and_delete_elem(progs_->fe_triage_fd(), &k, &t) == 0;
  if (!counted && !has_record) return;
  if (old != gates_.end()) {
    if (!has_record) return;  // a packet of the old flow, still draining
    gates_.erase(old);
  }
  if (!has_record) {
    // Its record is gone (swept, or an earlier run's): nothing to decide with. The stack has the flow
    // once batond has given what tc counted its verdicts, as for any flow served locally.
    g.local = true;
    g.handed_off = true;
    g.last_verdict_ms = monotonic_ms();
    gates_[peek->key] = g;  // its handoff entry is written at the packet's verdict
    return;
  }
  gates_[peek->key] = g;
  const TriageRecord r = from_abi(t);
  DatapathEvent e;
  e.kind = DatapathEvent::kFrontendTriaged;
  e.key = peek->key;
  e.syn = r.syn;
  e.served_here = r.local_watch;
  // tc copied the SYN as it arrived: from a local or virtual device its checksum may be only partial
  // (CHECKSUM_PARTIAL, the pseudo-header sum; NFQUEUE completes it, bpf_skb_load_bytes does not). The
  // replay on the back end needs a whole one.
  if (auto syn = TcpPacket::parse(e.syn)) syn->fill_checksums();
  if (r.synack) e.synack = *r.synack;
  on_event_(e);
}

void BpfDatapath::sweep_triage(uint64_t now_ms) {
  // A connection that never sends a request (or whose request never comes) is let go: tc forgets it
  // and the stack, still in SYN_RECV, completes it with the client's next ACK (an answer to the
  // stack's next SYN/ACK retransmission, which tc no longer drops).
  const int fd = progs_->fe_triage_fd();
  for (const auto& k : keys_of(fd)) {
    baton_fe_triage t{};
    if (bpf_map_lookup_elem(fd, &k, &t) != 0) continue;
    const uint64_t limit =
        (t.flags & BATON_TRIAGE_LOCAL_WATCH) ? opts_.watch_timeout_ms : opts_.triage_timeout_ms;
    if (now_ms >= t.last_ns / 1'000'000 + limit) bpf_map_delete_elem(fd, &k);
  }
}

void BpfDatapath::open_gate_now(const baton_flow_key& key, baton_fe_flow& v, const baton_fe_handoff& h) {
  v.xlate = h.xlate;
  v.next_request = h.next_request;
  v.watch_node = h.watch_node;
  v.gate |= BATON_GATE_OPEN;
  if (bpf_map_update_elem(progs_->fe_flows_fd(), &key, &v, BPF_EXIST) != 0) ++shared_->program_errors;
}

void BpfDatapath::adopt_pinned_flows() {
  size_t found = 0;
  // Each to the worker whose queue gets its packets.
  auto adopt = [&](const AdoptedFlow& a) {
    shared_->adopted[worker_of(a.key.saddr, a.key.sport, shared_->workers)].push_back(a);
    ++found;
  };
  // Handed-off flows an earlier batond left running in the kernel go on; their state machines are
  // rebuilt from the maps. Flows that were still being decided cannot be resumed: forgotten (their
  // packets go to the local stack, which still has them).
  for (const auto& k : keys_of(progs_->fe_flows_fd())) {
    baton_fe_flow v{};
    baton_fe_handoff h{};
    if (bpf_map_lookup_elem(progs_->fe_flows_fd(), &k, &v) != 0) continue;
    const bool handed_off = bpf_map_lookup_elem(progs_->fe_handoffs_fd(), &k, &h) == 0;
    const bool open = (v.gate & BATON_GATE_OPEN) != 0;
    // Being decided, ended, or served here (the stack has it once nobody holds its packets): forgotten.
    if ((!open && !handed_off) || (h.flags & (BATON_HANDOFF_ENDED | BATON_HANDOFF_LOCAL))) {
      bpf_map_delete_elem(progs_->fe_flows_fd(), &k);
      bpf_map_delete_elem(progs_->fe_handoffs_fd(), &k);
      continue;
    }
    if (!open) open_gate_now(k, v, h);  // its predecessor stopped while it drained
    const FlowKey key = from_abi(k);
    adopt(AdoptedFlow{FlowRole::kFrontend, key, from_abi(v.xlate)});
  }
  for (const auto& k : keys_of(progs_->be_flows_fd())) {
    baton_be_flow v{};
    if (bpf_map_lookup_elem(progs_->be_flows_fd(), &k, &v) == 0 && v.state == BATON_BE_ESTABLISHED) {
      // One that ended meanwhile is adopted too: its front end must still be told.
      adopt(AdoptedFlow{FlowRole::kBackend, from_abi(k), from_abi(v.xlate),
                        (v.close_flags & BATON_CLOSE_REPORTED) != 0,
                        (v.close_flags & BATON_CLOSE_RESET) != 0});
    } else {
      bpf_map_delete_elem(progs_->be_flows_fd(), &k);
    }
  }
  if (found) spdlog::info("datapath: {} offloaded flows found in {}", found, opts_.pin_dir);
}

void BpfDatapath::stop_keeping_flows() {
  // The kernel's part is the first worker's, which stops last.
  if (progs_ && first()) {
    // Without batond nothing may wait for it: connections tc was following go to the stack.
    set_kernel_decisions(false);
    // Flows being decided need the slow path, which goes away now: let the local stack have them. Flows
    // handed off but still draining go to the kernel now (the queue and what it held go with us).
    for (const auto& k : keys_of(progs_->fe_flows_fd())) {
      baton_fe_flow v{};
      baton_fe_handoff h{};
      if (bpf_map_lookup_elem(progs_->fe_flows_fd(), &k, &v) != 0 || (v.gate & BATON_GATE_OPEN)) continue;
      if (bpf_map_lookup_elem(progs_->fe_handoffs_fd(), &k, &h) == 0 && !(h.flags & BATON_HANDOFF_LOCAL)) {
        open_gate_now(k, v, h);
      } else {
        bpf_map_delete_elem(progs_->fe_flows_fd(), &k);
        bpf_map_delete_elem(progs_->fe_handoffs_fd(), &k);
      }
    }
    for (const auto& k : keys_of(progs_->be_flows_fd())) {
      baton_be_flow v{};
      if (bpf_map_lookup_elem(progs_->be_flows_fd(), &k, &v) == 0 && v.state != BATON_BE_ESTABLISHED) {
        bpf_map_delete_elem(progs_->be_flows_fd(), &k);
      }
    }
    progs_->keep_attached();
  }
  release(false);
}

void BpfDatapath::release(bool remove_programs) {
  slow_.stop();
  {
    std::lock_guard lock(shared_->mu);
    shared_->wake_fd[worker_] = -1;
    if (first()) {
      if (shared_->progs && remove_programs) {
        shared_->progs->detach();
        shared_->progs->unpin();
      }
      if (shared_->events) {
        ring_buffer__free(shared_->events);
        shared_->events = nullptr;
      }
      // Closes our handles; kept attached, the programs stay and the maps stay pinned.
      shared_->progs.reset();
    }
  }
  progs_ = nullptr;
  for (int* fd : {&epoll_fd_, &wake_fd_}) {
    if (*fd >= 0) {
      close(*fd);
      *fd = -1;
    }
  }
  gates_.clear();
  counted_.clear();
  dirty_.clear();
}

void BpfDatapath::stop() {
  release(true);
}

void BpfDatapath::handle_event(const baton_event& ev) {
  DatapathEvent e;
  e.key = from_abi(ev.key);
  if (ev.type == BATON_EV_FE_RELEASED) {
    // The datapath's own business: the state machines forgot the flow when they decided.
    auto g = gates_.find(e.key);
    if (g != gates_.end() && g->second.local) gates_.erase(g);
    return;
  }
  if (ev.type == BATON_EV_FE_SUPERSEDED) {
    // tc forgot a flow that was over when a new connection's SYN came on its tuple.
    auto g = gates_.find(e.key);
    if (g != gates_.end() && (g->second.local || g->second.ended)) gates_.erase(g);
  }
  switch (ev.type) {
    case BATON_EV_FE_SUPERSEDED:
      e.kind = DatapathEvent::kFrontendSuperseded;
      break;
    case BATON_EV_FE_SYNACK:
      e.kind = DatapathEvent::kFrontendSynAck;
      break;
    case BATON_EV_BE_SYNACK:
      e.kind = DatapathEvent::kBackendSynAck;
      break;
    case BATON_EV_BE_REFUSED:
      e.kind = DatapathEvent::kBackendRefused;
      break;
    case BATON_EV_BE_BLOCKED:
      e.kind = DatapathEvent::kBackendBlocked;
      break;
    case BATON_EV_BE_CLOSED:
      e.kind = DatapathEvent::kBackendClosed;
      break;
    default:
      return;
  }
  e.synack.seq = ev.seq;
  e.synack.ack = ev.ack;
  if (ev.has_timestamp) e.synack.tsval = ev.tsval;
  if (ev.wscale != 0xff) e.synack.wscale = ev.wscale;
  if (ev.mss) e.synack.mss = ev.mss;
  e.synack.sack_permitted = ev.sack_permitted != 0;
  e.synack.window = ev.window;
  e.reset = ev.reset != 0;
  on_event_(e);
  return;
}

void BpfDatapath::poll() {
  uint64_t woken = 0;
  if (wake_fd_ >= 0 && read(wake_fd_, &woken, sizeof(woken)) < 0) woken = 0;  // not woken: nothing to reset
  slow_.poll();
  pump_events();
}

void BpfDatapath::note_counted(const DatapathPacket& p) {
  if (p.direction != Direction::kIngress || !(p.mark & BATON_COUNTED_MARK)) return;
  const auto peek = peek_tcp(p.bytes);
  if (!peek) return;
  auto g = gates_.find(peek->key);
  if (g != gates_.end()) counted_[p.id] = {peek->key, g->second.generation};
}

void BpfDatapath::verdict(const Verdict& v) {
  // Reinjected (or dropped) first: only then may tc take the flow over and send what comes next.
  slow_.verdict(v);
  auto c = counted_.find(v.id);
  if (c == counted_.end()) return;
  auto g = gates_.find(c->second.first);
  if (g != gates_.end() && g->second.generation == c->second.second) {
    ++g->second.released;
    // Every packet queued before this one has had its verdict too (one queue, handled in order).
    g->second.known = true;
    if (g->second.local) g->second.last_verdict_ms = monotonic_ms();
    if (g->second.handed_off) mark_dirty(g->first, g->second);
  }
  counted_.erase(c);
}

void BpfDatapath::inject_local(ByteView packet) {
  // An injected packet may make a peer answer at once (the window-opening ACK of a handoff, within this
  // very call on veth): what the verdicts before it released must be visible to tc first.
  flush();
  slow_.inject_local(packet);
}

void BpfDatapath::write_handoff(const FlowKey& key, const Gate& g) {
  baton_flow_key k = to_abi(key);
  baton_fe_handoff h{};
  h.xlate = to_abi(g.xlate);
  h.released = g.known ? g.released : BATON_RELEASED_UNKNOWN;
  h.flags = (g.ended ? BATON_HANDOFF_ENDED : 0) | (g.local ? BATON_HANDOFF_LOCAL : 0);
  h.next_request = g.watch.next_request;
  h.watch_node = g.watch.on ? g.watch.node : BATON_WATCH_OFF;
  // Without its entry the flow stays on the slow path: batond goes on forwarding its packets itself.
  if (int err = bpf_map_update_elem(progs_->fe_handoffs_fd(), &k, &h, BPF_ANY)) map_update_failed(err);
}

void BpfDatapath::delete_frontend_entries(const FlowKey& key, uint32_t over_flag) {
  baton_flow_key k = to_abi(key);
  if (over_flag) {
    // A flow that is over: tc forgets it itself when a new connection comes on its tuple (flow_is_over
    // in tc ingress, reported by an event batond may not have read yet), and the entries are then the
    // new connection's. tc deletes the handoff entry then, and a new flow starts without one, so the
    // flag still there says the entries are the old flow's. (tc would have to see the new SYN and its
    // request between the two system calls below to slip a new flow in.)
    baton_fe_handoff h{};
    if (bpf_map_lookup_elem(progs_->fe_handoffs_fd(), &k, &h) != 0 || !(h.flags & over_flag)) return;
  }
  bpf_map_delete_elem(progs_->fe_flows_fd(), &k);
  bpf_map_delete_elem(progs_->fe_handoffs_fd(), &k);
}

void BpfDatapath::mark_dirty(const FlowKey& key, Gate& g) {
  if (g.dirty) return;
  g.dirty = true;
  dirty_.push_back(key);
}

void BpfDatapath::flush() {
  if (!progs_) return;
  for (const auto& key : dirty_) {
    auto g = gates_.find(key);
    // Not dirty: written already (its key came twice: erased and created again meanwhile).
    if (g == gates_.end() || !g->second.dirty) continue;
    g->second.dirty = false;
    if (g->second.handed_off) write_handoff(key, g->second);
  }
  dirty_.clear();
}

void BpfDatapath::tick(uint64_t now_ms) {
  // A flow served locally is usually released by tc at its next packet once drained; one that sends
  // nothing more (its last ACK went through batond) would keep its entries. After a second without a
  // verdict nothing of it can be left on the slow path: forget it here, its packets go to the stack.
  if (!progs_ || now_ms < next_sweep_ms_) return;
  next_sweep_ms_ = now_ms + 1000;
  if (first()) sweep_triage(now_ms);
  for (auto it = gates_.begin(); it != gates_.end();) {
    const Gate& g = it->second;
    if (g.local && now_ms >= g.last_verdict_ms + 1000) {
      delete_frontend_entries(it->first, BATON_HANDOFF_LOCAL);
      it = gates_.erase(it);
    } else {
      ++it;
    }
  }
}

bool BpfDatapath::program_frontend(const Action& action) {
  // tc owns baton_fe_flow once it exists (it counts in it): batond writes it only to create it, and
  // tells tc everything else through baton_fe_handoffs.
  if (const auto* w = std::get_if<WatchFlow>(&action)) {
    baton_flow_key key = to_abi(w->key);
    // An earlier connection's handoff first: it must never meet the new flow's count (a local one with
    // nothing released would let tc forget the new flow at once).
    bpf_map_delete_elem(progs_->fe_handoffs_fd(), &key);
    baton_fe_flow v{};
    v.watch_node = BATON_WATCH_OFF;
    if (int err = bpf_map_update_elem(progs_->fe_flows_fd(), &key, &v, BPF_ANY)) {
      map_update_failed(err);
      return false;
    }
    Gate g;
    g.generation = ++generations_;
    gates_[w->key] = g;
  } else if (const auto* o = std::get_if<OffloadFlow>(&action)) {
    Gate& g = gates_[o->key];
    g.handed_off = true;
    g.xlate = o->xlate;
    g.watch = o->watch;
    mark_dirty(o->key, g);
  } else if (const auto* e = std::get_if<EndFlow>(&action)) {
    auto g = gates_.find(e->key);
    if (g != gates_.end()) {
      g->second.ended = true;
      mark_dirty(e->key, g->second);
    }
  } else if (const auto* f = std::get_if<ForgetFlow>(&action)) {
    auto g = gates_.find(f->key);
    if (f->to_local_stack && g != gates_.end()) {
      // tc hands the flow to the stack itself once drained (BATON_HANDOFF_LOCAL) and reports it.
      g->second.local = true;
      g->second.handed_off = true;
      g->second.last_verdict_ms = monotonic_ms();
      mark_dirty(f->key, g->second);
      return true;
    }
    const bool ended = g != gates_.end() && g->second.ended;
    delete_frontend_entries(f->key, ended ? BATON_HANDOFF_ENDED : 0);
    if (g != gates_.end()) gates_.erase(g);
  }
  return true;
}

void BpfDatapath::note_close(const NoteClose& n) {
  // Added to what tc ingress and egress track themselves (bpf/lib/close.h). Detached, nobody else
  // writes the entry. Attached, tc sets its flags atomically and this read-modify-write can lose one it
  // sets in between; user space sees packets of an attached flow's close only while a switch drains
  // them, or for one this node serves as its own front end, and a lost flag leaves the flow to its idle
  // timeout.
  baton_flow_key key = to_abi(n.key);
  baton_be_flow v{};
  if (bpf_map_lookup_elem(progs_->be_flows_fd(), &key, &v) != 0) return;
  const baton_be_flow before = v;
  add_close_state(v, n.close);
  const uint32_t flags = v.close_flags;
  spdlog::debug("bpf: {} close seen in user space: close flags {:#x} -> {:#x}", format_key(n.key),
                before.close_flags, flags);
  if (flags == before.close_flags && v.client_fin_end == before.client_fin_end &&
      v.server_fin_end == before.server_fin_end)
    return;
  // Ended now: reported here, since tc may never see another packet of the flow (the back end has
  // ended it already if what it saw alone was enough; the report is then ignored).
  const bool report = close_state_of(v).closed() && !(flags & BATON_CLOSE_REPORTED);
  if (report) v.close_flags |= BATON_CLOSE_REPORTED;
  if (bpf_map_update_elem(progs_->be_flows_fd(), &key, &v, BPF_EXIST) != 0) {
    ++shared_->program_errors;
    return;
  }
  if (report && on_event_) {
    DatapathEvent e;
    e.kind = DatapathEvent::kBackendClosed;
    e.key = n.key;
    e.reset = (v.close_flags & BATON_CLOSE_RESET) != 0;
    on_event_(e);
  }
}

std::vector<std::pair<FlowKey, CloseState>> BpfDatapath::close_states() const {
  std::vector<std::pair<FlowKey, CloseState>> out;
  if (!progs_) return out;
  for (const auto& k : keys_of(progs_->be_flows_fd())) {
    baton_be_flow v{};
    if (bpf_map_lookup_elem(progs_->be_flows_fd(), &k, &v) != 0 || v.close_flags == 0) continue;
    out.emplace_back(from_abi(k), close_state_of(v));
  }
  return out;
}

void BpfDatapath::map_update_failed(int err) {
  if (err == -E2BIG) {
    // Full: a real overload (the maps have room for twice max_flows, see flow_map_capacity).
    if (shared_->map_full++ == 0)
      spdlog::warn("bpf: a flow map is full; flows that find no room are served here");
    return;
  }
  ++shared_->program_errors;
  spdlog::warn("bpf: flow map update failed: {}", std::strerror(-err));
}

bool BpfDatapath::program(const Action& action) {
  if (!progs_) return true;
  if (const auto* n = std::get_if<NoteClose>(&action)) {
    note_close(*n);
    return true;
  }
  if (const auto* s = std::get_if<SilenceFlow>(&action)) {
    // tc owns the flags (close tracking); only the state changes, in place.
    baton_flow_key key = to_abi(s->key);
    baton_be_flow v{};
    if (bpf_map_lookup_elem(progs_->be_flows_fd(), &key, &v) == 0) {
      v.state = BATON_BE_SILENT;
      if (bpf_map_update_elem(progs_->be_flows_fd(), &key, &v, BPF_EXIST) != 0) ++shared_->program_errors;
    }
    return true;
  }
  const FlowRole role = std::visit(
      [](const auto& a) {
        if constexpr (requires { a.role; }) {
          return a.role;
        } else {
          return FlowRole::kFrontend;
        }
      },
      action);
  if (role == FlowRole::kFrontend) return program_frontend(action);
  int err = 0;
  if (const auto* w = std::get_if<WatchFlow>(&action)) {
    baton_flow_key key = to_abi(w->key);
    baton_be_flow v{};
    v.state = BATON_BE_CAPTURE;
    err = bpf_map_update_elem(progs_->be_flows_fd(), &key, &v, BPF_ANY);
  } else if (const auto* o = std::get_if<OffloadFlow>(&action)) {
    baton_flow_key key = to_abi(o->key);
    baton_be_flow v{};
    // A flow that was silenced for a move that did not happen keeps what tc tracked of its close.
    const bool known =
        bpf_map_lookup_elem(progs_->be_flows_fd(), &key, &v) == 0 && v.state == BATON_BE_SILENT;
    if (!known) v = baton_be_flow{};
    v.state = BATON_BE_ESTABLISHED;
    v.xlate = to_abi(o->xlate);
    v.last_ns = monotonic_ms() * 1'000'000;
    err = bpf_map_update_elem(progs_->be_flows_fd(), &key, &v, BPF_ANY);
  } else if (const auto* f = std::get_if<ForgetFlow>(&action)) {
    // Back ends mark their ended flows themselves (BATON_CLOSE_REPORTED): EndFlow needs nothing here.
    baton_flow_key key = to_abi(f->key);
    bpf_map_delete_elem(progs_->be_flows_fd(), &key);
  }
  if (err) map_update_failed(err);
  // A replay whose replies tc would not capture must not start (an established flow that found no room
  // goes on, rewritten by no one: its entry can only be missing after a failure counted here).
  return !(err && std::holds_alternative<WatchFlow>(action));
}

std::optional<uint64_t> BpfDatapath::last_activity_ms(FlowRole role, const FlowKey& key) const {
  if (!progs_) return std::nullopt;
  baton_flow_key k = to_abi(key);
  uint64_t last_ns = 0;
  if (role == FlowRole::kFrontend) {
    baton_fe_flow v{};
    if (bpf_map_lookup_elem(progs_->fe_flows_fd(), &k, &v) != 0) return std::nullopt;
    last_ns = v.last_ns;
  } else {
    baton_be_flow v{};
    if (bpf_map_lookup_elem(progs_->be_flows_fd(), &k, &v) != 0) return std::nullopt;
    last_ns = v.last_ns;
  }
  if (last_ns == 0) return std::nullopt;
  return last_ns / 1'000'000;
}

namespace {
// One entry of a per-CPU array of counters, summed over CPUs.
uint64_t per_cpu_sum(int fd, uint32_t index) {
  const int ncpus = libbpf_num_possible_cpus();
  std::vector<uint64_t> values(static_cast<size_t>(ncpus > 0 ? ncpus : 1));
  uint64_t sum = 0;
  if (bpf_map_lookup_elem(fd, &index, values.data()) == 0) {
    for (uint64_t v : values)
      sum += v;
  }
  return sum;
}
}  // namespace

uint64_t BpfDatapath::counter(uint32_t index) const {
  return progs_ ? per_cpu_sum(progs_->counters_fd(), index) : 0;
}

uint64_t BpfDatapath::drops(uint32_t reason) const {
  return progs_ ? per_cpu_sum(progs_->drops_fd(), reason) : 0;
}

uint64_t BpfDatapath::served_locally() const {
  return first() ? counter(BATON_CNT_FE_TRIAGE_LOCAL) : 0;  // the node's: counted once
}

nlohmann::json BpfDatapath::stats() const {
  nlohmann::json j;
  j["attached"] = progs_ && progs_->attached();
  j["interface"] = opts_.interface;
  j["pin_dir"] = opts_.pin_dir;
  j["map_update_errors"] = shared_->program_errors.load();
  j["map_full"] =
      shared_->map_full.load();  // flows that found no room in a full flow map (served here or refused)
  j["flow_map_capacity"] = flow_map_capacity(opts_.max_flows);
  // Front-end flows batond tracks a gate for: being decided, draining, handed off or served locally.
  j["gates_tracked"] = gates_.size();
  j["kernel_triage"] = shared_->triage_on;
  if (!progs_) return j;
  j["flow_map_bytes"] = progs_->flow_map_bytes();
  nlohmann::json c;
  for (uint32_t i = 0; i < BATON_CNT_MAX; ++i)
    c[counter_name(static_cast<int>(i))] = counter(i);
  j["counters"] = c;
  nlohmann::json d;
  for (uint32_t i = 0; i < BATON_DROP_MAX; ++i)
    d[drop_reason_name(static_cast<int>(i))] = drops(i);
  j["drops"] = d;
  return j;
}

void BpfDatapath::close_gates() {
  // While detached, user space forwarded every packet without tc counting them; some may still be in the
  // queue when the programs return. Each front-end flow drains again: tc counts and queues its packets,
  // and the first counted verdict proves that everything queued before it has had its verdict too.
  for (const auto& k : keys_of(progs_->fe_flows_fd())) {
    baton_fe_flow v{};
    if (bpf_map_lookup_elem(progs_->fe_flows_fd(), &k, &v) != 0) continue;
    auto g = gates_.find(from_abi(k));
    if (g == gates_.end()) continue;
    if (v.gate & BATON_GATE_OPEN) {
      v.gate = 0;  // the programs are detached: nobody else writes it now
      if (bpf_map_update_elem(progs_->fe_flows_fd(), &k, &v, BPF_EXIST) != 0) ++shared_->program_errors;
      g->second.released = 0;
    }
    g->second.known = false;
    if (g->second.handed_off) write_handoff(g->first, g->second);
  }
}

void BpfDatapath::fence_slow_path() {
  // A packet that met the wide rules just before they narrowed may still be on its way into the queue:
  // the netfilter hooks and the queueing run under RCU, so a grace period (membarrier's global command)
  // lets every one of them arrive. Then handle them all, before the programs' path can overtake them.
  if (syscall(SYS_membarrier, MEMBARRIER_CMD_GLOBAL, 0, 0) != 0) usleep(20'000);
  slow_.drain();
}

Status BpfDatapath::attach() {
  if (!progs_) return make_error("the eBPF datapath is not running");
  if (progs_->attached()) return Ok{};
  close_gates();
  // The maps are kept in step at all times, so the programs take over every offloaded flow at once
  // (front-end flows once drained); only then is the slow path narrowed to marked packets.
  if (auto s = progs_->attach(ifindex_); !s) return s;
  if (auto s = slow_.set_slow_mark(BATON_SLOW_MARK); !s) {
    progs_->detach();
    return s;
  }
  set_kernel_decisions(true);
  // Back-end replies have no gate (tc egress runs after the queue and cannot hold a packet back): the
  // ones still queued are sent at once, so that the programs' path overtakes as few as possible.
  fence_slow_path();
  spdlog::info("datapath: BPF programs attached to {}", opts_.interface);
  return Ok{};
}

void BpfDatapath::prepare_switch(bool attach) {
  if (attach && progs_ && !progs_->attached()) close_gates();
}

void BpfDatapath::finish_switch(bool attach) {
  if (attach && progs_) fence_slow_path();
}

Status BpfDatapath::detach() {
  if (!progs_) return make_error("the eBPF datapath is not running");
  if (!progs_->attached()) return Ok{};
  // User space takes every packet first (packets it rewrites carry the done mark, which tc egress
  // skips), then the programs go: no packet is left without a translator in between.
  if (auto s = slow_.set_slow_mark(0); !s) return s;
  progs_->detach();
  // User space sees every packet now. The records of connections tc was following stay: their requests,
  // queued already (counted) or still to come, are taken over from them (take_over_triaged), instead of
  // going to the local stack; the sweep removes what nobody takes, and attach empties the rest.
  set_kernel_decisions(false, /*keep_records=*/true);
  spdlog::info("datapath: BPF programs detached; NFQUEUE handles every packet");
  return Ok{};
}

}  // namespace baton
