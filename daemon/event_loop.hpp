// A small epoll loop: file descriptors with callbacks, plus a periodic tick.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace baton {

uint64_t monotonic_ms();

class EventLoop {
 public:
  using Callback = std::function<void(uint32_t events)>;
  EventLoop();
  ~EventLoop();
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  void add(int fd, uint32_t events, Callback cb);
  void modify(int fd, uint32_t events);
  void remove(int fd);
  // Runs until stop(); `tick` runs every `tick_ms` and after each batch of events that took longer.
  void run(uint64_t tick_ms, const std::function<void(uint64_t now_ms)>& tick);
  // Runs `fn` at the end of every round (after a batch of events, after a tick): for work that is
  // cheaper done once for everything the round produced (writes to a socket, say).
  void at_round_end(std::function<void()> fn) { round_end_.push_back(std::move(fn)); }
  // Safe from any thread, also before run(), which then returns at once.
  void stop();
  // Runs `fn` on the loop's own thread, soon (safe from any thread): how the threads of a batond with
  // several workers talk to each other's parts. Once run() has returned, at once on the caller's.
  void post(std::function<void()> fn);

 private:
  void run_posted();
  int epfd_;
  int wake_fd_;  // eventfd: posted work waits
  std::atomic<bool> stopped_ = false;
  std::mutex posted_mu_;
  std::vector<std::function<void()>> posted_;
  bool finished_ = false;  // run() returned: posted work runs on the caller's thread
  std::unordered_map<int, Callback> callbacks_;
  std::vector<std::function<void()>> round_end_;
  void end_round() {
    for (const auto& fn : round_end_)
      fn();
  }
};

}  // namespace baton
