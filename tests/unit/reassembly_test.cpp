#include <gtest/gtest.h>

#include "core/reassembly.hpp"
#include "tests/unit/packet_builder.hpp"

namespace baton {
namespace {

TEST(Reassembly, InOrderAndDuplicates) {
  Reassembly r;
  r.reset(0xfffffffe);  // wraps
  EXPECT_TRUE(r.add(0xfffffffe, test::as_bytes("abcd")));
  EXPECT_FALSE(r.add(0xfffffffe, test::as_bytes("abcd")));
  EXPECT_FALSE(r.add(0xffffffff, test::as_bytes("b")));
  EXPECT_TRUE(r.add(0x00000000, test::as_bytes("cdef")));  // overlaps: only "ef" is new
  EXPECT_EQ(r.contiguous(), test::as_bytes("abcdef"));
  EXPECT_EQ(r.contiguous_end(), 4u);
}

TEST(Reassembly, OutOfOrderFillsIn) {
  Reassembly r;
  r.reset(100);
  EXPECT_TRUE(r.add(106, test::as_bytes("ghi")));
  EXPECT_TRUE(r.add(103, test::as_bytes("def")));
  EXPECT_TRUE(r.contiguous().empty());
  EXPECT_EQ(r.held_bytes(), 6u);
  EXPECT_TRUE(r.add(100, test::as_bytes("abc")));
  EXPECT_EQ(r.contiguous(), test::as_bytes("abcdefghi"));
  EXPECT_EQ(r.held_bytes(), 9u);
}

TEST(Reassembly, OldDataIsDuplicate) {
  Reassembly r;
  r.reset(100);
  EXPECT_FALSE(r.add(90, test::as_bytes("0123456789")));
  EXPECT_FALSE(r.add(100, {}));
}

TEST(Reassembly, AdvancingKeepsWhatFollowsAndItsGaps) {
  // Pipelined requests: once the first is decided, the base moves on to where the second starts.
  Reassembly r;
  r.reset(0xfffffffc);
  EXPECT_TRUE(r.add(0xfffffffc, test::as_bytes("GET1GET2")));
  EXPECT_TRUE(r.add(8, test::as_bytes("xyz")));  // past a gap of 4
  r.advance(0);
  EXPECT_EQ(r.base(), 0u);
  EXPECT_EQ(r.contiguous(), test::as_bytes("GET2"));
  EXPECT_EQ(r.held_bytes(), 7u);
  EXPECT_FALSE(r.add(0xfffffffc, test::as_bytes("GET1"))) << "before the base: old";
  EXPECT_TRUE(r.add(4, test::as_bytes("....")));
  EXPECT_EQ(r.contiguous(), test::as_bytes("GET2....xyz"));
  r.advance(100);  // never past what is held
  EXPECT_EQ(r.base(), 11u);
  EXPECT_TRUE(r.contiguous().empty());
}

}  // namespace
}  // namespace baton
