// The user-space reference datapath: iptables sends the service port's packets to an NFQUEUE, batond
// gives each a verdict (possibly rewritten, possibly much later: that is how packets are held), and a
// raw socket injects replayed packets into the local stack.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "daemon/datapath.hpp"

struct nfq_handle;
struct nfq_q_handle;
struct nfgenmsg;
struct nfq_data;

namespace baton {

struct NfqueueOptions {
  uint16_t queue_num = 0;
  uint32_t service_addr = 0;
  uint16_t service_port = 80;
  uint32_t mark = 0xba70;
  std::vector<uint32_t> peer_service_addrs;  // forwarded packets to these must pass the FORWARD chain
  // Slow-path mode under a kernel datapath: only ingress packets carrying `slow_mark` are queued (tc
  // marks them), nothing on egress. 0: every service-port packet is queued (the reference datapath).
  uint32_t slow_mark = 0;
  // Set on packets this datapath rewrote, so that a kernel datapath leaves them alone.
  uint32_t done_mark = 0;
  // Several workers (Config::workers): each binds queue_num + worker; the rules, which send each
  // client's packets to its worker's queue (worker_of), are installed by worker 0.
  uint32_t workers = 1;
  uint32_t worker = 0;
};

// The iptables bpf match (classic BPF bytecode) that tells the kernel which packets are worker's: those
// whose client hashes to it (worker_of). The client is the packet's source on ingress, its destination
// on egress.
std::string worker_match(bool ingress, uint32_t workers, uint32_t worker);

class NfqueueDatapath final : public Datapath {
 public:
  explicit NfqueueDatapath(NfqueueOptions opts) : opts_(std::move(opts)) {}
  ~NfqueueDatapath() override { stop(); }
  NfqueueDatapath(const NfqueueDatapath&) = delete;
  NfqueueDatapath& operator=(const NfqueueDatapath&) = delete;

  std::string name() const override { return "nfqueue"; }
  Status start(Handler handler, EventHandler events) override;
  void stop() override;
  int fd() const override { return fd_; }
  void poll() override { read_batch(); }
  // Handles every packet queued so far; returns once the queue's socket is empty.
  void drain();
  void verdict(const Verdict& v) override;
  void inject_local(ByteView packet) override;

  // Switches between queueing everything and queueing only marked packets, atomically (one
  // iptables-restore transaction: no packet ever sees the chains half filled).
  Status set_slow_mark(uint32_t slow_mark);
  Status update(const DatapathUpdate& u) override;

  // The rule set, in iptables-restore format (exposed for tests and docs).
  std::string ruleset() const;

 private:
  static int on_packet(nfq_q_handle* qh, nfgenmsg* msg, nfq_data* nfa, void* data);
  // Reads and handles up to one batch of queued packets; false when the socket ran empty.
  bool read_batch();
  Status install_rules();
  Status load_ruleset();

  NfqueueOptions opts_;
  Handler handler_;
  nfq_handle* h_ = nullptr;
  nfq_q_handle* qh_ = nullptr;
  int fd_ = -1;
  int raw_fd_ = -1;
  std::vector<char> recv_buf_;  // one per datapath: workers read their queues on their own threads
  bool rules_installed_ = false;
};

}  // namespace baton
