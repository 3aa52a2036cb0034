// The eBPF datapath: tc programs handle the steady state of handed-off flows in the kernel (front end:
// translate + redirect to the back end; back end: capture the replayed SYN/ACK, translate replies,
// track the close); the NFQUEUE datapath, narrowed to the packets tc marks, remains the slow path for
// flows being decided. Detached (batonctl datapath detach), the NFQUEUE datapath takes everything back.
#pragma once

#include <memory>
#include <string>

#include "daemon/bpf_programs.hpp"
#include "daemon/datapath.hpp"
#include "daemon/nfqueue_datapath.hpp"

struct ring_buffer;

namespace baton {

struct BpfDatapathOptions {
  NfqueueOptions nfqueue;
  std::string interface;  // where the service address lives
  std::string pin_dir;
  uint32_t max_flows = 65536;
};

class BpfDatapath final : public Datapath {
 public:
  explicit BpfDatapath(BpfDatapathOptions opts);
  ~BpfDatapath() override;
  BpfDatapath(const BpfDatapath&) = delete;
  BpfDatapath& operator=(const BpfDatapath&) = delete;

  std::string name() const override { return "ebpf"; }
  Status start(Handler handler, EventHandler events) override;
  void stop() override;
  int fd() const override { return epoll_fd_; }
  void poll() override;
  void verdict(const Verdict& v) override { slow_.verdict(v); }
  void inject_local(ByteView packet) override { slow_.inject_local(packet); }
  void program(const Action& action) override;
  std::optional<uint64_t> last_activity_ms(FlowRole role, const FlowKey& key) const override;
  nlohmann::json stats() const override;
  std::vector<AdoptedFlow> adopted_flows() override { return std::move(adopted_); }
  void stop_keeping_flows() override;
  Status attach() override;
  Status detach() override;

 private:
  static int on_event(void* ctx, void* data, size_t size);
  void adopt_pinned_flows();

  BpfDatapathOptions opts_;
  NfqueueDatapath slow_;
  std::unique_ptr<BpfPrograms> progs_;
  ring_buffer* events_ = nullptr;
  EventHandler on_event_;
  int epoll_fd_ = -1;
  int ifindex_ = 0;
  uint64_t program_errors_ = 0;
  std::vector<AdoptedFlow> adopted_;
};

}  // namespace baton
