#include "daemon/bpf_datapath.hpp"

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <net/if.h>
#include <spdlog/spdlog.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <cstring>

#include "baton_abi.h"
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
    case BATON_CNT_FE_SYNACK_DROPPED:
      return "fe_synack_dropped";
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
    case BATON_CNT_DROP_MALFORMED:
      return "drop_malformed";
    case BATON_CNT_DROP_CAPTURE:
      return "drop_capture";
    case BATON_CNT_EVENT_LOST:
      return "event_lost";
    default:
      return "unknown";
  }
}

}  // namespace

BpfDatapath::BpfDatapath(BpfDatapathOptions opts)
    : opts_(std::move(opts)), slow_([this] {
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
  BpfLoadOptions lo;
  lo.pin_dir = opts_.pin_dir;
  lo.service_addr = opts_.nfqueue.service_addr;
  lo.service_port = opts_.nfqueue.service_port;
  lo.max_flows = opts_.max_flows;
  auto progs = BpfPrograms::load(lo);
  if (!progs) return make_error(progs.error());
  progs_ = std::move(*progs);
  adopt_pinned_flows();
  events_ = ring_buffer__new(progs_->events_fd(), &BpfDatapath::on_event, this, nullptr);
  if (!events_) {
    stop();
    return make_error("cannot open the BPF event ring buffer");
  }
  // Events before every queued packet: the SYN/ACK event is always older than the ACK that answers it,
  // and both can arrive within one batch of queue reads.
  auto in_order = [this, handler = std::move(handler)](const DatapathPacket& p) {
    if (events_) ring_buffer__consume(events_);
    handler(p);
  };
  if (auto s = slow_.start(in_order, nullptr); !s) {
    stop();
    return s;
  }
  if (auto s = progs_->attach(ifindex_); !s) {
    stop();
    return s;
  }
  epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  for (int fd : {slow_.fd(), ring_buffer__epoll_fd(events_)}) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = fd;
    epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev);
  }
  return Ok{};
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

void BpfDatapath::adopt_pinned_flows() {
  // Handed-off flows an earlier batond left running in the kernel go on; their state machines are
  // rebuilt from the maps. Flows that were still being decided cannot be resumed: forgotten (their
  // packets go to the local stack, which still has them).
  for (const auto& k : keys_of(progs_->fe_flows_fd())) {
    baton_fe_flow v{};
    if (bpf_map_lookup_elem(progs_->fe_flows_fd(), &k, &v) == 0 && v.state == BATON_FE_FORWARD &&
        !(v.flags & BATON_FE_ENDED)) {
      adopted_.push_back({FlowRole::kFrontend, from_abi(k), from_abi(v.xlate)});
    } else {
      bpf_map_delete_elem(progs_->fe_flows_fd(), &k);
    }
  }
  for (const auto& k : keys_of(progs_->be_flows_fd())) {
    baton_be_flow v{};
    if (bpf_map_lookup_elem(progs_->be_flows_fd(), &k, &v) == 0 && v.state == BATON_BE_ESTABLISHED) {
      // One that ended meanwhile is adopted too: its front end must still be told.
      adopted_.push_back({FlowRole::kBackend, from_abi(k), from_abi(v.xlate),
                          (v.close_flags & BATON_CLOSE_REPORTED) != 0,
                          (v.close_flags & BATON_CLOSE_RESET) != 0});
    } else {
      bpf_map_delete_elem(progs_->be_flows_fd(), &k);
    }
  }
  if (!adopted_.empty())
    spdlog::info("datapath: {} offloaded flows found in {}", adopted_.size(), opts_.pin_dir);
}

void BpfDatapath::stop_keeping_flows() {
  if (progs_) {
    // Flows being decided need the slow path, which goes away now: let the local stack have them.
    for (const auto& k : keys_of(progs_->fe_flows_fd())) {
      baton_fe_flow v{};
      if (bpf_map_lookup_elem(progs_->fe_flows_fd(), &k, &v) == 0 && v.state != BATON_FE_FORWARD) {
        bpf_map_delete_elem(progs_->fe_flows_fd(), &k);
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
  progs_.reset();  // closes our handles; the programs stay attached and the maps pinned
  slow_.stop();
  if (events_) {
    ring_buffer__free(events_);
    events_ = nullptr;
  }
  if (epoll_fd_ >= 0) {
    close(epoll_fd_);
    epoll_fd_ = -1;
  }
}

void BpfDatapath::stop() {
  if (progs_) {
    progs_->detach();
    progs_->unpin();
  }
  slow_.stop();
  if (events_) {
    ring_buffer__free(events_);
    events_ = nullptr;
  }
  progs_.reset();
  if (epoll_fd_ >= 0) {
    close(epoll_fd_);
    epoll_fd_ = -1;
  }
}

int BpfDatapath::on_event(void* ctx, void* data, size_t size) {
  auto* self = static_cast<BpfDatapath*>(ctx);
  if (size < sizeof(baton_event)) return 0;
  baton_event ev{};
  std::memcpy(&ev, data, sizeof(ev));
  DatapathEvent e;
  e.key = from_abi(ev.key);
  switch (ev.type) {
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
      return 0;
  }
  e.synack.seq = ev.seq;
  e.synack.ack = ev.ack;
  if (ev.has_timestamp) e.synack.tsval = ev.tsval;
  if (ev.wscale != 0xff) e.synack.wscale = ev.wscale;
  if (ev.mss) e.synack.mss = ev.mss;
  e.synack.sack_permitted = ev.sack_permitted != 0;
  e.synack.window = ev.window;
  e.reset = ev.reset != 0;
  self->on_event_(e);
  return 0;
}

void BpfDatapath::poll() {
  slow_.poll();
  if (events_) ring_buffer__consume(events_);
}

void BpfDatapath::program(const Action& action) {
  if (!progs_) return;
  int err = 0;
  if (const auto* w = std::get_if<WatchFlow>(&action)) {
    baton_flow_key key = to_abi(w->key);
    if (w->role == FlowRole::kFrontend) {
      baton_fe_flow v{};
      v.state = BATON_FE_WATCH;
      err = bpf_map_update_elem(progs_->fe_flows_fd(), &key, &v, BPF_ANY);
    } else {
      baton_be_flow v{};
      v.state = BATON_BE_CAPTURE;
      err = bpf_map_update_elem(progs_->be_flows_fd(), &key, &v, BPF_ANY);
    }
  } else if (const auto* o = std::get_if<OffloadFlow>(&action)) {
    baton_flow_key key = to_abi(o->key);
    const uint64_t now_ns = monotonic_ms() * 1'000'000;
    if (o->role == FlowRole::kFrontend) {
      baton_fe_flow v{};
      v.state = BATON_FE_FORWARD;
      v.xlate = to_abi(o->xlate);
      v.last_ns = now_ns;
      err = bpf_map_update_elem(progs_->fe_flows_fd(), &key, &v, BPF_ANY);
    } else {
      baton_be_flow v{};
      v.state = BATON_BE_ESTABLISHED;
      v.xlate = to_abi(o->xlate);
      v.last_ns = now_ns;
      err = bpf_map_update_elem(progs_->be_flows_fd(), &key, &v, BPF_ANY);
    }
  } else if (const auto* e = std::get_if<EndFlow>(&action)) {
    baton_flow_key key = to_abi(e->key);
    if (e->role == FlowRole::kFrontend) {
      baton_fe_flow v{};
      if (bpf_map_lookup_elem(progs_->fe_flows_fd(), &key, &v) == 0) {
        v.flags |= BATON_FE_ENDED;
        err = bpf_map_update_elem(progs_->fe_flows_fd(), &key, &v, BPF_EXIST);
      }
    }  // back ends mark their ended flows themselves (BATON_CLOSE_REPORTED)
  } else if (const auto* f = std::get_if<ForgetFlow>(&action)) {
    baton_flow_key key = to_abi(f->key);
    bpf_map_delete_elem(f->role == FlowRole::kFrontend ? progs_->fe_flows_fd() : progs_->be_flows_fd(), &key);
  }
  if (err) {
    ++program_errors_;
    spdlog::warn("bpf: flow map update failed: {}", std::strerror(-err));
  }
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

nlohmann::json BpfDatapath::stats() const {
  nlohmann::json j;
  j["attached"] = progs_ && progs_->attached();
  j["interface"] = opts_.interface;
  j["pin_dir"] = opts_.pin_dir;
  j["map_update_errors"] = program_errors_;
  if (!progs_) return j;
  int ncpus = libbpf_num_possible_cpus();
  std::vector<uint64_t> values(static_cast<size_t>(ncpus > 0 ? ncpus : 1));
  nlohmann::json c;
  for (uint32_t i = 0; i < BATON_CNT_MAX; ++i) {
    uint64_t sum = 0;
    if (bpf_map_lookup_elem(progs_->counters_fd(), &i, values.data()) == 0) {
      for (uint64_t v : values)
        sum += v;
    }
    c[counter_name(static_cast<int>(i))] = sum;
  }
  j["counters"] = c;
  return j;
}

Status BpfDatapath::attach() {
  if (!progs_) return make_error("the eBPF datapath is not running");
  if (progs_->attached()) return Ok{};
  // The maps are kept in step at all times, so the programs take over every offloaded flow at once;
  // only then is the slow path narrowed to marked packets.
  if (auto s = progs_->attach(ifindex_); !s) return s;
  if (auto s = slow_.set_slow_mark(BATON_SLOW_MARK); !s) {
    progs_->detach();
    return s;
  }
  spdlog::info("datapath: BPF programs attached to {}", opts_.interface);
  return Ok{};
}

Status BpfDatapath::detach() {
  if (!progs_) return make_error("the eBPF datapath is not running");
  if (!progs_->attached()) return Ok{};
  // User space takes every packet first (packets it rewrites carry the done mark, which tc egress
  // skips), then the programs go: no packet is left without a translator in between.
  if (auto s = slow_.set_slow_mark(0); !s) return s;
  progs_->detach();
  spdlog::info("datapath: BPF programs detached; NFQUEUE handles every packet");
  return Ok{};
}

}  // namespace baton
