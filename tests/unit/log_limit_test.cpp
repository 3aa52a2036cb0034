#include "daemon/log_limit.hpp"

#include <gtest/gtest.h>

namespace baton {
namespace {

TEST(LogLimit, BurstThenHeldBackThenCounted) {
  LogLimiter limit(1000, 3);
  uint64_t held = 99;
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(limit.allow(100, &held));
    EXPECT_EQ(held, 0U);
  }
  EXPECT_FALSE(limit.allow(200, &held));
  EXPECT_FALSE(limit.allow(1099, &held));
  // A new window: the first line says how many were held back, the next one nothing.
  ASSERT_TRUE(limit.allow(1100, &held));
  EXPECT_EQ(held, 2U);
  EXPECT_EQ(LogLimiter::note(held), " (2 similar lines held back)");
  ASSERT_TRUE(limit.allow(1101, &held));
  EXPECT_EQ(held, 0U);
  EXPECT_EQ(LogLimiter::note(held), "");
}

TEST(LogLimit, FirstCallAtTimeZeroIsAllowed) {
  LogLimiter limit(1000, 1);
  uint64_t held = 0;
  EXPECT_TRUE(limit.allow(0, &held));
  EXPECT_FALSE(limit.allow(0, &held));
}

}  // namespace
}  // namespace baton
