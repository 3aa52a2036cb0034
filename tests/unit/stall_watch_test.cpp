#include "core/stall_watch.hpp"

#include <gtest/gtest.h>

namespace baton {
namespace {

TEST(StallWatch, NothingQueuedIsNeverStalled) {
  StallWatch w;
  EXPECT_FALSE(w.stalled(1'000'000, 250));
}

TEST(StallWatch, UnacknowledgedPastTheLimitIsStalled) {
  StallWatch w;
  w.queued(100, 1000);
  EXPECT_FALSE(w.stalled(1249, 250));
  EXPECT_TRUE(w.stalled(1250, 250));
  w.acked(99);
  EXPECT_TRUE(w.stalled(1250, 250)) << "one byte still unacknowledged";
  w.acked(100);
  EXPECT_FALSE(w.stalled(5000, 250));
}

TEST(StallWatch, TheOldestUnacknowledgedMarkCounts) {
  StallWatch w;
  w.queued(100, 1000);
  w.queued(200, 1200);
  w.acked(100);  // the first message arrived: only the second one's age counts
  EXPECT_FALSE(w.stalled(1300, 250));
  EXPECT_TRUE(w.stalled(1450, 250));
}

TEST(StallWatch, MarksOfOneMillisecondShareAnEntry) {
  StallWatch w;
  for (uint64_t end = 10; end <= 1000; end += 10)
    w.queued(end, 7);
  EXPECT_EQ(w.marks(), 1U);
  w.acked(990);
  EXPECT_TRUE(w.stalled(257, 250)) << "the entry ends where its last message ends";
  w.acked(1000);
  EXPECT_EQ(w.marks(), 0U);
}

}  // namespace
}  // namespace baton
