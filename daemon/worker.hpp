// One worker of batond: a whole handoff engine (its datapath queue, the state machines, its own control
// connection to the same worker of every peer) on a thread of its own, for the connections whose client
// hashes to its index (worker_of, core/worker_hash.hpp). Workers share nothing but the kernel: a flow's
// packets, on the front end and on the back end, and its control messages all reach the same worker.
#pragma once

#include <future>
#include <memory>
#include <string>
#include <thread>
#include <type_traits>

#include "daemon/bpf_datapath.hpp"
#include "daemon/config.hpp"
#include "daemon/datapath.hpp"
#include "daemon/engine.hpp"
#include "daemon/event_loop.hpp"
#include "daemon/load_gauge.hpp"
#include "daemon/peer_mesh.hpp"

namespace baton {

class Worker {
 public:
  // shared: what the workers share of the eBPF datapath, made by the first worker that needs it; load:
  // the node's load, which worker 0 measures for all.
  Worker(const Config& cfg, uint32_t index, const std::string& interface, std::shared_ptr<BpfShared>& shared,
         std::shared_ptr<LoadGauge> load);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // Opens the control port and installs the datapath, from the calling thread; on error the worker is
  // stopped again.
  Status start();
  // Runs the worker's loop on its own thread.
  void run();
  // Ends the thread (if running) and removes what start() installed; keep_flows as
  // Datapath::stop_keeping_flows.
  void stop(bool keep_flows);

  // Runs fn on the worker's thread (at once on the caller's when that thread is not running) and
  // returns its result: how the main thread reads status and applies reloads.
  template <class F>
  std::invoke_result_t<F&> call(F fn) {
    if (!thread_.joinable()) return fn();
    std::packaged_task<std::invoke_result_t<F&>()> task(std::move(fn));
    auto result = task.get_future();
    loop_.post([&task] { task(); });
    return result.get();
  }

  uint32_t index() const { return index_; }
  // Only on the worker's thread (inside call()), or while it is not running.
  Config& config() { return cfg_; }
  Datapath& datapath() { return *datapath_; }
  Engine& engine() { return engine_; }
  PeerMesh& mesh() { return mesh_; }

 private:
  Config cfg_;  // the worker's own copy: a reload replaces it on the worker's thread
  uint32_t index_;
  EventLoop loop_;
  std::unique_ptr<Datapath> datapath_;
  Engine engine_;
  PeerMesh mesh_;
  std::thread thread_;
  bool started_ = false;
};

}  // namespace baton
