// The loaded BPF objects (tc ingress + tc egress skeletons sharing pinned maps) and their tc hooks.
// RAII: destroying this closes the objects; it never unpins (unpin() does, at a clean stop) and it
// detaches only what attach() attached.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "daemon/datapath.hpp"

struct baton_tc_ingress;
struct baton_tc_egress;

namespace baton {

struct BpfLoadOptions {
  std::string pin_dir;        // bpffs directory for the maps, one per node
  uint32_t service_addr = 0;  // host order
  uint16_t service_port = 80;
  uint32_t max_flows = 65536;
  uint32_t node_id = 0;  // this node, as content holders name it (request watching)
};

// Entries of each flow map (front-end flows, handoffs, back-end flows) for a config's max_flows. batond
// tracks at most max_flows flows per role; the kernel keeps some for a while after batond let them go (a
// connection served here drains for up to a second) or before batond knows them (one tc gave to batond,
// its event unread). Twice that leaves room for both, so that a full map means a real overload.
constexpr uint32_t flow_map_capacity(uint32_t max_flows) {
  return max_flows * 2;
}

class BpfPrograms {
 public:
  static Result<std::unique_ptr<BpfPrograms>> load(const BpfLoadOptions& opts);
  ~BpfPrograms();
  BpfPrograms(const BpfPrograms&) = delete;
  BpfPrograms& operator=(const BpfPrograms&) = delete;

  // clsact on `ifindex`, our filters on ingress and egress. The qdisc may exist already: another tool's
  // is shared and left in place at detach (only our filters go); one that a crashed batond created
  // (recorded in a pinned map) is ours to remove.
  Status attach(int ifindex);
  void detach();
  bool attached() const { return attached_; }
  // The programs stay attached when this object goes (a restart that keeps the flows).
  void keep_attached() { attached_ = false; }
  // Removes the pinned maps (a clean stop); the maps live on while this object holds them.
  void unpin();

  // Kernel memory of the flow maps (preallocated, so the same empty or full), as /proc accounts it.
  uint64_t flow_map_bytes() const;

  int fe_flows_fd() const;
  int fe_handoffs_fd() const;
  int be_flows_fd() const;
  int fe_triage_fd() const;
  int content_fd() const;
  int runtime_fd() const;
  int counters_fd() const;
  int drops_fd() const;
  int events_fd() const;
  int ingress_prog_fd() const;
  int egress_prog_fd() const;

 private:
  BpfPrograms() = default;
  uint32_t qdisc_record() const;
  void set_qdisc_record(uint32_t value);
  baton_tc_ingress* ingress_ = nullptr;
  baton_tc_egress* egress_ = nullptr;
  std::string pin_dir_;
  int ifindex_ = 0;
  bool attached_ = false;
  bool created_qdisc_ = false;
};

// Makes sure a bpffs is mounted at /sys/fs/bpf (systemd does it on most hosts; containers and minimal
// systems may not have it).
Status ensure_bpffs();

}  // namespace baton
