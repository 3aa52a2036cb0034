#include <gtest/gtest.h>

#include <random>

#include "core/checksum.hpp"

namespace baton {
namespace {

// Checksum of a region whose checksum field sits at `csum_off`, computed from scratch.
uint16_t full(const Bytes& b, size_t csum_off) {
  Bytes z = b;
  z[csum_off] = z[csum_off + 1] = 0;
  return static_cast<uint16_t>(~ones_sum(z));
}

TEST(Checksum, Rfc1071Example) {
  // RFC 1071 section 3: the sum of these words is 0xddf2.
  Bytes b{0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7};
  EXPECT_EQ(ones_sum(b), 0xddf2);
}

TEST(Checksum, OddLengthPadsWithZero) {
  Bytes b{0x12, 0x34, 0x56};
  EXPECT_EQ(ones_sum(b), 0x1234 + 0x5600);
}

TEST(Checksum, IncrementalUpdateMatchesRecomputationAtEveryAlignment) {
  std::mt19937 rng(7);
  for (int round = 0; round < 2000; ++round) {
    size_t size = 20 + rng() % 41;  // odd and even region sizes
    Bytes b(size);
    for (auto& x : b)
      x = static_cast<uint8_t>(rng());
    const size_t csum_off = 16;
    store16(b, csum_off, full(b, csum_off));
    size_t len = 1 + rng() % 8;
    size_t off = rng() % (size - len);
    if (off < csum_off + 2 && off + len > csum_off) continue;  // never edits the checksum itself
    Bytes repl(len);
    for (auto& x : repl)
      x = static_cast<uint8_t>(rng());
    replace_and_update(b, csum_off, off, repl);
    ASSERT_EQ(load16(b, csum_off), full(b, csum_off)) << "size " << size << " off " << off << " len " << len;
  }
}

TEST(Checksum, ExternalChangeMatchesRecomputation) {
  Bytes pseudo{0x0a, 0x00, 0x00, 0x01};
  Bytes region{0x11, 0x22, 0x00, 0x00, 0x33, 0x44};
  auto sum_with = [&](const Bytes& p) {
    Bytes all = p;
    Bytes z = region;
    z[2] = z[3] = 0;
    all.insert(all.end(), z.begin(), z.end());
    return static_cast<uint16_t>(~ones_sum(all));
  };
  store16(region, 2, sum_with(pseudo));
  Bytes new_pseudo{0x0a, 0x00, 0x00, 0x02};
  update_for_external_change(region, 2, pseudo, new_pseudo);
  EXPECT_EQ(load16(region, 2), sum_with(new_pseudo));
}

}  // namespace
}  // namespace baton
