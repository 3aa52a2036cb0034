// The fixture of the BPF program tests: the tc programs loaded once (maps pinned under a private
// directory), packets run through BPF_PROG_TEST_RUN, maps seeded and read back.
#pragma once

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <gtest/gtest.h>
#include <linux/pkt_cls.h>
#include <unistd.h>

#include <cstring>
#include <vector>

#include "baton_abi.h"
#include "core/content_prefixes.hpp"
#include "core/dispatch.hpp"
#include "core/translate.hpp"
#include "daemon/bpf_abi_convert.hpp"
#include "daemon/bpf_programs.hpp"
#include "tests/unit/packet_builder.hpp"

namespace baton::bpftest {

using test::Segment;

inline constexpr uint32_t kService = test::kNode1;  // the programs are loaded for node 1's service address
inline constexpr uint32_t kOtherNode = test::kNode2;
inline constexpr uint32_t kMaxFlows = 1024;  // as the programs are loaded

inline const uint8_t kEth[14] = {2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x08, 0x00};

inline Bytes with_eth(const Bytes& ip) {
  Bytes b(sizeof(kEth) + ip.size());
  std::memcpy(b.data(), kEth, sizeof(kEth));
  if (!ip.empty()) std::memcpy(b.data() + sizeof(kEth), ip.data(), ip.size());
  return b;
}

struct RunResult {
  int error = 0;  // of BPF_PROG_TEST_RUN itself
  int retval = -1;
  Bytes out;
  uint32_t mark = 0;
};

class BpfProgTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (geteuid() != 0) GTEST_SKIP() << "needs root";
    BpfLoadOptions o;
    o.pin_dir = "/sys/fs/bpf/baton-test-" + std::to_string(getpid());
    o.service_addr = kService;
    o.service_port = 80;
    o.max_flows = kMaxFlows;
    o.node_id = 1;  // as the content maps the tests load name this node
    auto p = BpfPrograms::load(o);
    ASSERT_TRUE(p) << p.error();
    progs_ = p->release();
  }
  static void TearDownTestSuite() {
    if (progs_) {
      progs_->unpin();
      delete progs_;
      progs_ = nullptr;
    }
  }
  void SetUp() override {
    ASSERT_NE(progs_, nullptr);
    for (int fd :
         {progs_->fe_flows_fd(), progs_->fe_handoffs_fd(), progs_->be_flows_fd(), progs_->fe_triage_fd()}) {
      baton_flow_key k{};
      while (bpf_map_get_next_key(fd, nullptr, &k) == 0)
        bpf_map_delete_elem(fd, &k);
    }
    events_ = ring_buffer__new(progs_->events_fd(), &BpfProgTest::collect, this, nullptr);
    ring_buffer__consume(events_);
    seen_.clear();
  }
  void TearDown() override {
    if (events_) ring_buffer__free(events_);
  }

  static int collect(void* ctx, void* data, size_t size) {
    auto* self = static_cast<BpfProgTest*>(ctx);
    baton_event ev{};
    std::memcpy(&ev, data, std::min(size, sizeof(ev)));
    self->seen_.push_back(ev);
    return 0;
  }
  std::vector<baton_event> events() {
    ring_buffer__consume(events_);
    return seen_;
  }

  static RunResult run(int prog_fd, const Bytes& packet, uint32_t mark = 0, bool expect_ok = true) {
    RunResult r;
    r.out.resize(packet.size() + 256);
    __sk_buff ctx{};
    ctx.mark = mark;
    __sk_buff ctx_out{};
    LIBBPF_OPTS(bpf_test_run_opts, opts);
    opts.data_in = packet.data();
    opts.data_out = r.out.data();
    opts.data_size_in = static_cast<uint32_t>(packet.size());
    opts.data_size_out = static_cast<uint32_t>(r.out.size());
    opts.ctx_in = &ctx;
    opts.ctx_size_in = sizeof(ctx);
    opts.ctx_out = &ctx_out;
    opts.ctx_size_out = sizeof(ctx_out);
    opts.repeat = 1;
    r.error = bpf_prog_test_run_opts(prog_fd, &opts);
    if (expect_ok) {
      EXPECT_EQ(r.error, 0) << "BPF_PROG_TEST_RUN failed: " << std::strerror(errno);
    }
    r.out.resize(opts.data_size_out);
    r.retval = static_cast<int>(opts.retval);
    r.mark = ctx_out.mark;
    return r;
  }
  RunResult ingress(const Bytes& ip, uint32_t mark = 0) {
    return run(progs_->ingress_prog_fd(), with_eth(ip), mark);
  }
  RunResult egress(const Bytes& ip, uint32_t mark = 0) {
    return run(progs_->egress_prog_fd(), with_eth(ip), mark);
  }

  void seed_frontend(const FlowKey& k, uint32_t gate, const Translation& t = {}) {
    baton_flow_key key = to_abi(k);
    baton_fe_flow v{};
    v.gate = gate;
    v.xlate = to_abi(t);
    v.watch_node = BATON_WATCH_OFF;
    ASSERT_EQ(bpf_map_update_elem(progs_->fe_flows_fd(), &key, &v, BPF_ANY), 0);
  }
  void seed_backend(const FlowKey& k, uint32_t state, const Translation& t = {}) {
    baton_flow_key key = to_abi(k);
    baton_be_flow v{};
    v.state = state;
    v.xlate = to_abi(t);
    ASSERT_EQ(bpf_map_update_elem(progs_->be_flows_fd(), &key, &v, BPF_ANY), 0);
  }
  void seed_handoff(const FlowKey& k, uint32_t released, const Translation& t, uint32_t next_request = 0,
                    uint32_t watch_node = BATON_WATCH_OFF, uint32_t flags = 0) {
    baton_flow_key key = to_abi(k);
    baton_fe_handoff h{};
    h.flags = flags;
    h.xlate = to_abi(t);
    h.released = released;
    h.next_request = next_request;
    h.watch_node = watch_node;
    ASSERT_EQ(bpf_map_update_elem(progs_->fe_handoffs_fd(), &key, &h, BPF_ANY), 0);
  }
  baton_fe_flow frontend_entry(const FlowKey& k) {
    baton_flow_key key = to_abi(k);
    baton_fe_flow v{};
    EXPECT_EQ(bpf_map_lookup_elem(progs_->fe_flows_fd(), &key, &v), 0);
    return v;
  }
  static uint64_t counter(uint32_t index) { return per_cpu_sum(progs_->counters_fd(), index); }
  // Packets the programs dropped for `reason` (enum baton_drop_reason).
  static uint64_t dropped(uint32_t reason) { return per_cpu_sum(progs_->drops_fd(), reason); }
  static uint64_t per_cpu_sum(int fd, uint32_t index) {
    int ncpus = libbpf_num_possible_cpus();
    std::vector<uint64_t> values(static_cast<size_t>(ncpus > 0 ? ncpus : 1));
    EXPECT_EQ(bpf_map_lookup_elem(fd, &index, values.data()), 0);
    uint64_t sum = 0;
    for (uint64_t v : values)
      sum += v;
    return sum;
  }
  baton_be_flow backend_entry(const FlowKey& k) {
    baton_flow_key key = to_abi(k);
    baton_be_flow v{};
    EXPECT_EQ(bpf_map_lookup_elem(progs_->be_flows_fd(), &key, &v), 0);
    return v;
  }

  static void set_runtime(uint32_t which, uint32_t on) {
    ASSERT_EQ(bpf_map_update_elem(progs_->runtime_fd(), &which, &on, BPF_ANY), 0);
  }
  static void clear_content() {
    baton_content_key k{};
    while (bpf_map_get_next_key(progs_->content_fd(), nullptr, &k) == 0)
      bpf_map_delete_elem(progs_->content_fd(), &k);
  }
  // The content trie as batond fills it (BpfDatapath::load_content), for node `self`.
  static void load_content(const ContentMap& map, NodeId self) {
    clear_content();
    for (const PrefixEntry& e : prefix_entries(map, self, BATON_PATH_MAX)) {
      ContentEntryAbi a = to_abi(e);
      ASSERT_EQ(bpf_map_update_elem(progs_->content_fd(), &a.key, &a.value, BPF_ANY), 0) << e.prefix;
    }
  }

  static inline BpfPrograms* progs_ = nullptr;
  ring_buffer* events_ = nullptr;
  std::vector<baton_event> seen_;
};

}  // namespace baton::bpftest
