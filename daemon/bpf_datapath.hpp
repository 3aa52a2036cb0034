// The eBPF datapath: tc programs handle the steady state of handed-off flows in the kernel (front end:
// translate + redirect to the back end; back end: capture the replayed SYN/ACK, translate replies,
// track the close); the NFQUEUE datapath, narrowed to the packets tc marks, remains the slow path for
// flows being decided. Detached (batonctl datapath detach), the NFQUEUE datapath takes everything back.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/dispatch.hpp"
#include "daemon/bpf_programs.hpp"
#include "daemon/datapath.hpp"
#include "daemon/nfqueue_datapath.hpp"

struct ring_buffer;
struct baton_event;
struct baton_flow_key;
struct baton_fe_flow;
struct baton_fe_handoff;

namespace baton {

// What the workers of one batond (Config::workers) share of the eBPF datapath: the programs and maps,
// loaded, attached and removed by worker 0 (started first, stopped last); and the one event ring buffer,
// read by whichever worker gets to it first, every event sorted into the inbox of the worker its flow
// belongs to (worker_of), which is woken to handle it. A worker reads the ring before each packet it
// handles, so an event written before a packet was queued is always handled before that packet.
struct BpfShared {
  explicit BpfShared(uint32_t workers);
  ~BpfShared();
  BpfShared(const BpfShared&) = delete;
  BpfShared& operator=(const BpfShared&) = delete;

  const uint32_t workers;
  std::unique_ptr<BpfPrograms> progs;
  std::mutex mu;  // events, inboxes
  ring_buffer* events = nullptr;
  std::vector<std::vector<baton_event>> inbox;  // per worker
  std::vector<int> wake_fd;                     // per worker: an eventfd in its datapath's epoll set
  // Offloaded flows an earlier batond left, found by worker 0 at load: per worker.
  std::vector<std::vector<AdoptedFlow>> adopted;
  std::atomic<uint64_t> program_errors = 0;
  std::atomic<uint64_t> map_full = 0;
  // The kernel's decisions (worker 0's to change, or the last worker's at start, before any thread runs).
  bool content_loaded = false;
  bool triage_on = false;
};

struct BpfDatapathOptions {
  NfqueueOptions nfqueue;
  std::string interface;  // where the service address lives
  std::string pin_dir;
  uint32_t max_flows = 65536;
  // Kernel triage (bpf/baton_abi.h, struct baton_fe_triage): tc follows new connections and serves local
  // requests itself, with this content map as seen by node `self`.
  bool triage = true;
  ContentMap content;
  NodeId self = 0;
  uint64_t triage_timeout_ms = 5'000;  // a triaged connection without a request for this long is let go
  // A connection served here and watched (BATON_TRIAGE_LOCAL_WATCH) without a packet for this long is no
  // longer watched (the stack keeps it).
  uint64_t watch_timeout_ms = 600'000;
};

class BpfDatapath final : public Datapath {
 public:
  // One worker's datapath; `shared` is every worker's (one per batond). Worker 0 loads the programs.
  BpfDatapath(BpfDatapathOptions opts, std::shared_ptr<BpfShared> shared, uint32_t worker);
  ~BpfDatapath() override;
  BpfDatapath(const BpfDatapath&) = delete;
  BpfDatapath& operator=(const BpfDatapath&) = delete;

  std::string name() const override { return "ebpf"; }
  Status start(Handler handler, EventHandler events) override;
  void stop() override;
  int fd() const override { return epoll_fd_; }
  void poll() override;
  void verdict(const Verdict& v) override;
  void flush() override;
  void tick(uint64_t now_ms) override;
  void inject_local(ByteView packet) override;
  bool program(const Action& action) override;
  std::vector<std::pair<FlowKey, CloseState>> close_states() const override;
  std::optional<uint64_t> last_activity_ms(FlowRole role, const FlowKey& key) const override;
  nlohmann::json stats() const override;
  uint64_t served_locally() const override;
  std::vector<AdoptedFlow> adopted_flows() override { return std::move(adopted_); }
  void stop_keeping_flows() override;
  Status update(const DatapathUpdate& u) override;
  Status attach() override;
  Status detach() override;
  void prepare_switch(bool attach) override;
  void finish_switch(bool attach) override;

 private:
  // The ring buffer's callback: each event into the inbox of its flow's worker.
  static int sort_event(void* ctx, void* data, size_t size);
  // Reads the ring buffer, then handles this worker's inbox; wakes the workers it found events for.
  void pump_events();
  void handle_event(const baton_event& ev);
  bool first() const { return worker_ == 0; }
  void note_close(const NoteClose& n);
  // batond's half of a front-end flow's gate (bpf/baton_abi.h, baton_fe_flow.gate): how many of the
  // packets tc counted have had their verdict, and what tc needs once it takes the flow over.
  struct Gate {
    uint32_t generation = 0;  // a new connection on the tuple starts a new count
    uint32_t released = 0;
    bool known = true;        // false after an attach, until the first counted verdict: see close_gates()
    bool handed_off = false;  // decided: tc may take the flow once drained
    bool local = false;       // ... to give it to the local stack (BATON_HANDOFF_LOCAL)
    bool ended = false;
    bool dirty = false;            // in dirty_: its handoff entry is written at the next flush()
    uint64_t last_verdict_ms = 0;  // local flows: when batond last gave a packet of it a verdict
    Translation xlate;
    RequestWatch watch;
  };

  void adopt_pinned_flows();
  // What tc decides without batond, on (as configured) or off: kernel triage (its map emptied either
  // way: flows tc was following go to the local stack) and request watching (only while batond decides).
  void set_kernel_decisions(bool on, bool keep_records = false);
  void set_runtime_switch(uint32_t which, bool on);
  void load_content();
  // A counted packet of a flow batond does not know: tc triaged it and now hands it over. Rebuilds what
  // batond would have seen (the SYN, the SYN/ACK) from tc's record, before the packet is handled.
  void take_over_triaged(const DatapathPacket& p);
  // Deletes a front-end flow's entries from the maps; for a flow that is over (over_flag: its handoff
  // entry's BATON_HANDOFF_ENDED or _LOCAL), only while they are still that flow's.
  void delete_frontend_entries(const FlowKey& key, uint32_t over_flag);
  // Its handoff entry is written at the next flush(), once however often it changed meanwhile.
  void mark_dirty(const FlowKey& key, Gate& g);
  void sweep_triage(uint64_t now_ms);
  uint64_t counter(uint32_t index) const;  // summed over CPUs
  uint64_t drops(uint32_t reason) const;   // packets the programs dropped for it, summed over CPUs
  // Remembers a packet tc counted, so that its verdict is reported.
  void note_counted(const DatapathPacket& p);
  bool program_frontend(const Action& action);
  // A flow map refused an insert: counted (full, or an error) and logged once.
  void map_update_failed(int err);
  void write_handoff(const FlowKey& key, const Gate& g);
  // A flow batond handed off but tc never took over, at a moment batond goes or starts: its queued
  // packets died with the old queue, so nothing is left to wait for.
  void open_gate_now(const baton_flow_key& key, baton_fe_flow& v, const baton_fe_handoff& h);
  // Before the programs come back (attach): flows that user space carried meanwhile drain again.
  void close_gates();
  // Every packet queued before the rules narrowed has been handled when this returns.
  void fence_slow_path();
  // Stops this worker's part; the first worker's also removes (remove_programs) or keeps the programs.
  void release(bool remove_programs);

  BpfDatapathOptions opts_;
  std::shared_ptr<BpfShared> shared_;
  uint32_t worker_;
  NfqueueDatapath slow_;
  BpfPrograms* progs_ = nullptr;  // shared_->progs while this worker runs
  EventHandler on_event_;
  int epoll_fd_ = -1;
  int wake_fd_ = -1;
  int ifindex_ = 0;
  std::vector<AdoptedFlow> adopted_;
  std::vector<baton_event> taken_;  // pump_events: this worker's events, out of its inbox
  std::unordered_map<FlowKey, Gate, FlowKeyHash> gates_;
  std::unordered_map<PacketId, std::pair<FlowKey, uint32_t>> counted_;  // awaiting their verdict
  std::vector<FlowKey> dirty_;                                          // handoffs to write at flush()
  uint32_t generations_ = 0;
  uint64_t next_sweep_ms_ = 0;
};

}  // namespace baton
