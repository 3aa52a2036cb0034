#include "daemon/worker.hpp"

#include <pthread.h>
#include <spdlog/spdlog.h>
#include <sys/epoll.h>

#include "daemon/bpf_datapath.hpp"
#include "daemon/nfqueue_datapath.hpp"

namespace baton {

namespace {

// The datapath a worker of `cfg` runs.
std::unique_ptr<Datapath> make_datapath(const Config& cfg, uint32_t worker, const std::string& interface,
                                        std::shared_ptr<BpfShared>& shared) {
  NfqueueOptions nq;
  nq.queue_num = cfg.queue_num;
  nq.service_addr = cfg.self().service_addr;
  nq.service_port = cfg.service_port;
  nq.mark = cfg.packet_mark;
  nq.workers = cfg.workers;
  nq.worker = worker;
  for (const auto& n : cfg.nodes) {
    if (n.id != cfg.node_id) nq.peer_service_addrs.push_back(n.service_addr);
  }
  if (cfg.datapath != "ebpf") return std::make_unique<NfqueueDatapath>(nq);
  BpfDatapathOptions bo;
  bo.nfqueue = nq;
  bo.interface = interface;
  bo.pin_dir = cfg.bpf_pin_dir;
  bo.max_flows = static_cast<uint32_t>(cfg.max_flows);
  bo.triage = cfg.kernel_triage;
  bo.content = cfg.content;
  bo.self = cfg.node_id;
  bo.triage_timeout_ms = cfg.hold_timeout_ms;
  bo.watch_timeout_ms = cfg.idle_timeout_ms;
  if (!shared) shared = std::make_shared<BpfShared>(cfg.workers);
  return std::make_unique<BpfDatapath>(bo, shared, worker);
}

}  // namespace

Worker::Worker(const Config& cfg, uint32_t index, const std::string& interface,
               std::shared_ptr<BpfShared>& shared, std::shared_ptr<LoadGauge> load)
    : cfg_(cfg),
      index_(index),
      datapath_(make_datapath(cfg_, index, interface, shared)),
      engine_(cfg_, *datapath_),
      mesh_(
          cfg_, loop_, [this](NodeId from, const proto::Message& m) { engine_.on_message(from, m); },
          [this](NodeId n, bool up, const std::vector<FlowKey>& unreached) {
            engine_.on_peer(n, up, unreached);
          },
          [this] { return engine_.node_load(); }, index) {
  engine_.attach(mesh_);
  engine_.share_load(std::move(load), index == 0);
}

Worker::~Worker() {
  stop(false);
}

Status Worker::start() {
  if (auto s = mesh_.start(); !s) return s;
  if (auto s = datapath_->start([this](const DatapathPacket& p) { engine_.on_packet(p); },
                                [this](const DatapathEvent& e) { engine_.on_datapath_event(e); });
      !s) {
    mesh_.stop();
    return make_error("datapath " + datapath_->name() + ": " + s.error());
  }
  loop_.add(datapath_->fd(), EPOLLIN, [this](uint32_t) { datapath_->poll(); });
  engine_.adopt(datapath_->adopted_flows());
  started_ = true;
  return Ok{};
}

void Worker::run() {
  thread_ = std::thread([this] {
    const std::string name = "batond-w" + std::to_string(index_);
    pthread_setname_np(pthread_self(), name.c_str());
    loop_.run(20, [this](uint64_t now) {
      // The engine first: it counts this node's load at heartbeat time, which the mesh's heartbeats
      // then carry (not the count of the previous period).
      engine_.tick(now);
      mesh_.tick(now);
    });
  });
}

void Worker::stop(bool keep_flows) {
  if (thread_.joinable()) {
    loop_.stop();
    thread_.join();
  }
  if (!started_) return;
  started_ = false;
  loop_.remove(datapath_->fd());
  if (keep_flows) {
    // The kernel keeps forwarding and translating, for the next batond to adopt.
    datapath_->stop_keeping_flows();
  } else {
    datapath_->stop();
  }
  mesh_.stop();
}

}  // namespace baton
