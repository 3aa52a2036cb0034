// Per-packet cost of the handoff rewrite: the tc programs through BPF_PROG_TEST_RUN (the kernel times
// `repeat` runs itself) against the core/ rewrite that the NFQUEUE datapath runs in user space. Prints
// one JSON object per case; bench/datapath.sh turns them into a table. Not a test: numbers only.
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <unistd.h>

#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

#include "baton_abi.h"
#include "core/packet_build.hpp"
#include "core/translate.hpp"
#include "daemon/bpf_abi_convert.hpp"
#include "daemon/bpf_programs.hpp"
#include "daemon/nfqueue_datapath.hpp"

using namespace baton;

namespace {

constexpr int kRounds = 7;  // report the median of these: the machine is shared and noisy

Bytes frame(const Bytes& ip) {
  Bytes b(14 + ip.size(), 0);
  b[12] = 0x08;
  std::memcpy(b.data() + 14, ip.data(), ip.size());
  return b;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

double bpf_ns(int prog_fd, const Bytes& pkt) {
  std::vector<double> rounds;
  Bytes out(pkt.size() + 64);
  for (int r = 0; r < kRounds; ++r) {
    LIBBPF_OPTS(bpf_test_run_opts, opts);
    opts.data_in = pkt.data();
    opts.data_size_in = static_cast<uint32_t>(pkt.size());
    opts.data_out = out.data();
    opts.data_size_out = static_cast<uint32_t>(out.size());
    opts.repeat = 200000;
    if (bpf_prog_test_run_opts(prog_fd, &opts) != 0) return -1;
    rounds.push_back(opts.duration);
  }
  return median(rounds);
}

template <class F>
double user_ns(const Bytes& pkt, F rewrite) {
  std::vector<double> rounds;
  Bytes work = pkt;
  const int n = 200000;
  for (int r = 0; r < kRounds; ++r) {
    auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < n; ++i) {
      // The NFQUEUE path copies each packet it rewrites (the verdict carries new bytes): so do we.
      work = pkt;
      auto p = TcpPacket::parse(work);
      rewrite(*p);
    }
    auto t1 = std::chrono::steady_clock::now();
    rounds.push_back(std::chrono::duration<double, std::nano>(t1 - t0).count() / n);
  }
  return median(rounds);
}

// The whole user-space path for one back-end reply: the kernel queues it (NFQUEUE), batond's datapath
// reads it, rewrites it and returns it with a verdict. Needs a namespace where `addr` is local and
// packets towards `peer` leave by an interface (bench/datapath.sh sets that up).
double nfqueue_path_ns(const Bytes& pkt, uint32_t addr, uint32_t peer, const Translation& t) {
  NfqueueOptions o;
  o.service_addr = addr;
  o.service_port = 80;
  NfqueueDatapath dp(o);
  std::atomic<uint64_t> done{0};
  auto handler = [&](const DatapathPacket& p) {
    Bytes copy(p.bytes.begin(), p.bytes.end());
    auto parsed = TcpPacket::parse(copy);
    if (parsed) rewrite_backend_to_client(t, *parsed);
    dp.verdict(accept_modified(p.id, std::move(copy)));
    done.fetch_add(1, std::memory_order_relaxed);
  };
  if (auto s = dp.start(handler, nullptr); !s) {
    std::fprintf(stderr, "packet_bench: %s\n", s.error().c_str());
    return -1;
  }
  Bytes out = pkt;
  store32(out, 12, addr);
  store32(out, 16, peer);
  TcpPacket::parse(out)->fill_checksums();
  int fd = socket(AF_INET, SOCK_RAW, IPPROTO_RAW);
  uint32_t mark = o.mark;
  setsockopt(fd, SOL_SOCKET, SO_MARK, &mark, sizeof(mark));
  sockaddr_in dst{};
  dst.sin_family = AF_INET;
  dst.sin_addr.s_addr = htonl(peer);
  const uint64_t total = 100000;
  const uint64_t burst = 500;
  std::vector<double> rounds;
  std::atomic<bool> stop{false};
  std::thread consumer([&] {
    while (!stop.load()) {
      dp.poll();
      std::this_thread::yield();
    }
  });
  for (int r = 0; r < kRounds; ++r) {
    uint64_t start = done.load();
    auto t0 = std::chrono::steady_clock::now();
    for (uint64_t sent = 0; sent < total; sent += burst) {
      for (uint64_t i = 0; i < burst; ++i) {
        sendto(fd, out.data(), out.size(), 0, reinterpret_cast<sockaddr*>(&dst), sizeof(dst));
      }
      // Keep the queue short: the consumer, not the queue limit, must set the pace.
      while (done.load() - start < sent + burst / 2)
        std::this_thread::yield();
    }
    while (done.load() - start < total)
      std::this_thread::yield();
    auto t1 = std::chrono::steady_clock::now();
    rounds.push_back(std::chrono::duration<double, std::nano>(t1 - t0).count() / total);
  }
  stop = true;
  consumer.join();
  close(fd);
  dp.stop();
  return median(rounds);
}

}  // namespace

// Addresses of the measured flow: the client, the front end the programs are loaded for, the back end.
constexpr uint32_t kClient = 0x0a000064;
constexpr uint32_t kFrontEnd = 0x0a000001;
constexpr uint32_t kBackEnd = 0x0a000002;

int main() {
  if (geteuid() != 0) {
    std::fprintf(stderr, "packet_bench: needs root (BPF)\n");
    return 1;
  }
  libbpf_set_print(nullptr);
  BpfLoadOptions o;
  o.pin_dir = "/sys/fs/bpf/baton-bench-" + std::to_string(getpid());
  o.service_addr = kFrontEnd;
  o.service_port = 80;
  o.max_flows = 1024;
  auto progs = BpfPrograms::load(o);
  if (!progs) {
    std::fprintf(stderr, "packet_bench: %s\n", progs.error().c_str());
    return 1;
  }
  Translation t;
  t.frontend_addr = kFrontEnd;
  t.backend_addr = kBackEnd;
  t.isn1 = 0xfffffff0;
  t.isn2 = 0x100;
  t.ts_offset = 12345;
  t.timestamps = true;
  t.frontend_wscale = 7;
  t.backend_wscale = 7;
  baton_xlate x = to_abi(t);

  // Front end: a client ACK with timestamps and two SACK blocks (a lossy download's typical ACK).
  SegmentSpec ack;
  ack.key = {kClient, kFrontEnd, 40000, 80};
  ack.ack = 0x10;
  ack.flags = tcp_flag::kAck;
  ack.window = 502;
  ack.timestamps = {{1, 2}};
  ack.sack = {{3, 4}, {5, 6}};
  Bytes ack_ip = make_segment(ack);
  auto k = TcpPacket::parse(ack_ip)->key();
  baton_flow_key fk = to_abi(k);
  baton_fe_flow fv{};
  fv.gate = BATON_GATE_OPEN;
  fv.xlate = x;
  bpf_map_update_elem((*progs)->fe_flows_fd(), &fk, &fv, BPF_ANY);

  // Back end: a full-sized data segment with timestamps.
  SegmentSpec reply;
  reply.key = {kFrontEnd, kClient, 80, 40000};
  reply.flags = tcp_flag::kAck;
  reply.window = 502;
  reply.timestamps = {{7, 8}};
  Bytes data_ip = make_data_segment(make_segment(reply), 0x200, Bytes(1448, 'x'), false);
  baton_be_flow bv{};
  bv.state = BATON_BE_ESTABLISHED;
  bv.xlate = x;
  bpf_map_update_elem((*progs)->be_flows_fd(), &fk, &bv, BPF_ANY);

  // With BATON_BENCH_ADDR/BATON_BENCH_PEER (bench/datapath.sh), the full NFQUEUE round trip as well.
  const char* addr = std::getenv("BATON_BENCH_ADDR");
  const char* peer = std::getenv("BATON_BENCH_PEER");
  double nfq = -1;
  if (addr && peer) nfq = nfqueue_path_ns(data_ip, *parse_ipv4(addr), *parse_ipv4(peer), t);

  struct Case {
    const char* name;
    double bpf;
    double user;
    double nfqueue;
  } cases[] = {
      {"front end: client ACK (TS + 2 SACK blocks)", bpf_ns((*progs)->ingress_prog_fd(), frame(ack_ip)),
       user_ns(ack_ip, [&](TcpPacket& p) { rewrite_client_to_backend(t, p); }), -1},
      {"back end: 1448-byte data segment (TS)", bpf_ns((*progs)->egress_prog_fd(), frame(data_ip)),
       user_ns(data_ip, [&](TcpPacket& p) { rewrite_backend_to_client(t, p); }), nfq},
  };
  for (const auto& c : cases) {
    std::printf(
        "{\"case\": \"%s\", \"bpf_ns\": %.1f, \"user_rewrite_ns\": %.1f, \"nfqueue_path_ns\": %.1f}\n",
        c.name, c.bpf, c.user, c.nfqueue);
  }
  (*progs)->unpin();
  return 0;
}
