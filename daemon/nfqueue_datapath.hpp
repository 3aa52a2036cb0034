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
};

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
  void poll() override;
  void verdict(const Verdict& v) override;
  void inject_local(ByteView packet) override;

  // The iptables commands that install (or remove) the rules; exposed for docs and `batonctl`.
  std::vector<std::vector<std::string>> install_commands() const;
  static std::vector<std::vector<std::string>> remove_commands();

 private:
  static int on_packet(nfq_q_handle* qh, nfgenmsg* msg, nfq_data* nfa, void* data);
  Status install_rules();

  NfqueueOptions opts_;
  Handler handler_;
  nfq_handle* h_ = nullptr;
  nfq_q_handle* qh_ = nullptr;
  int fd_ = -1;
  int raw_fd_ = -1;
  bool rules_installed_ = false;
};

}  // namespace baton
