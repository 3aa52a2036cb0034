#include "daemon/event_loop.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

namespace baton {
namespace {

TEST(EventLoop, WorkPostedFromAnotherThreadRunsOnTheLoopsThread) {
  EventLoop loop;
  std::thread::id ran_on;
  std::thread::id loop_thread;
  std::thread t([&] {
    loop_thread = std::this_thread::get_id();
    loop.run(1000, [](uint64_t) {});
  });
  std::atomic<int> done = 0;
  for (int i = 0; i < 100; ++i)
    loop.post([&] {
      ran_on = std::this_thread::get_id();
      ++done;
    });
  loop.post([&] { loop.stop(); });
  t.join();
  EXPECT_EQ(done, 100);
  EXPECT_EQ(ran_on, loop_thread);
}

TEST(EventLoop, AStopBeforeRunEndsItAtOnceAndLaterWorkRunsInline) {
  EventLoop loop;
  loop.stop();
  loop.run(1000, [](uint64_t) {});  // returns: the test would hang otherwise
  bool ran = false;
  loop.post([&] { ran = true; });
  EXPECT_TRUE(ran) << "nothing runs the loop any more: posted work runs on the caller's thread";
}

}  // namespace
}  // namespace baton
