// The classic BPF program that sends a client's packets to its worker's queue, run by a small
// interpreter of the instructions it uses over built packets: it must agree with worker_of in both
// directions, for every worker count.
#include <linux/filter.h>

#include <gtest/gtest.h>

#include <map>
#include <sstream>

#include "core/bytes.hpp"
#include "core/worker_hash.hpp"
#include "daemon/nfqueue_datapath.hpp"

namespace baton {
namespace {

// Runs iptables' bytecode form ("N,code jt jf k,...") on an IPv4 packet; the match's verdict.
bool run(const std::string& bytecode, const Bytes& p) {
  std::vector<sock_filter> prog;
  std::stringstream in(bytecode);
  size_t n = 0;
  char comma = 0;
  in >> n;
  for (size_t i = 0; i < n; ++i) {
    unsigned code = 0, jt = 0, jf = 0, k = 0;
    in >> comma >> code >> jt >> jf >> k;
    prog.push_back({static_cast<uint16_t>(code), static_cast<uint8_t>(jt), static_cast<uint8_t>(jf), k});
  }
  EXPECT_EQ(prog.size(), n);
  uint32_t a = 0, x = 0, mem[16] = {};
  for (size_t pc = 0; pc < prog.size(); ++pc) {
    const sock_filter& i = prog[pc];
    switch (i.code) {
      case BPF_LDX | BPF_B | BPF_MSH:
        x = 4U * (p[i.k] & 0xfU);
        break;
      case BPF_LD | BPF_H | BPF_IND:
        a = load16(p, x + i.k);
        break;
      case BPF_LD | BPF_W | BPF_ABS:
        a = load32(p, i.k);
        break;
      case BPF_ST:
        mem[i.k] = a;
        break;
      case BPF_LDX | BPF_W | BPF_MEM:
        x = mem[i.k];
        break;
      case BPF_ALU | BPF_XOR | BPF_X:
        a ^= x;
        break;
      case BPF_ALU | BPF_MUL | BPF_K:
        a *= i.k;
        break;
      case BPF_ALU | BPF_RSH | BPF_K:
        a >>= i.k;
        break;
      case BPF_JMP | BPF_JEQ | BPF_K:
        pc += a == i.k ? i.jt : i.jf;
        break;
      case BPF_RET | BPF_K:
        return i.k != 0;
      default:
        ADD_FAILURE() << "instruction " << i.code << " not known to this test";
        return false;
    }
  }
  ADD_FAILURE() << "fell off the end";
  return false;
}

// An IPv4 header of `ihl` words (options past 20 bytes) and a TCP header's ports.
Bytes packet(uint32_t src, uint32_t dst, uint16_t sport, uint16_t dport, unsigned ihl) {
  Bytes p((static_cast<size_t>(ihl) * 4) + 20, 0);
  p[0] = static_cast<uint8_t>(0x40 | ihl);
  store32(p, 12, src);
  store32(p, 16, dst);
  store16(p, ihl * 4, sport);
  store16(p, ihl * 4 + 2, dport);
  return p;
}

TEST(WorkerMatch, TheKernelsMatchAgreesWithWorkerOfBothWays) {
  const uint32_t service = 0x0ad30001;
  for (uint32_t workers : {2U, 4U, 8U}) {
    std::map<uint32_t, int> seen;
    for (uint32_t c = 0; c < 400; ++c) {
      const uint32_t client = 0x0ad30064 + (c % 3);
      const auto port = static_cast<uint16_t>(32768 + 2 * c);  // as Linux gives connect() ports
      const uint32_t expect = worker_of(client, port, workers);
      ASSERT_LT(expect, workers);
      ++seen[expect];
      for (uint32_t w = 0; w < workers; ++w) {
        const bool mine = w == expect;
        EXPECT_EQ(run(worker_match(true, workers, w), packet(client, service, port, 80, 5 + c % 2)), mine)
            << "ingress, " << workers << " workers";
        EXPECT_EQ(run(worker_match(false, workers, w), packet(service, client, 80, port, 5)), mine)
            << "egress, " << workers << " workers";
      }
    }
    for (uint32_t w = 0; w < workers; ++w)
      EXPECT_GT(seen[w], 400 / static_cast<int>(workers) / 2)
          << "worker " << w << " of " << workers << " gets its share";
  }
  EXPECT_EQ(worker_of(0x0ad30064, 40000, 1), 0U);
}

TEST(WorkerMatch, TheHashNamesAWorkerByAsManyTopBitsAsTheCountNeeds) {
  EXPECT_EQ(worker_hash_bits(1), 0U);
  EXPECT_EQ(worker_hash_bits(2), 1U);
  EXPECT_EQ(worker_hash_bits(8), 3U);
  EXPECT_EQ(worker_hash_bits(64), 6U);
  // The same hash at every count: a worker of 2 is the top bit of its worker of 64.
  for (uint16_t port = 32768; port < 33768; port += 2)
    EXPECT_EQ(worker_of(0x0ad30064, port, 2), worker_of(0x0ad30064, port, 64) >> 5) << port;
}

}  // namespace
}  // namespace baton
