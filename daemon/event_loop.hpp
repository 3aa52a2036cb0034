// A small epoll loop: file descriptors with callbacks, plus a periodic tick.
#pragma once

#include <cstdint>
#include <functional>
#include <unordered_map>

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
  void stop() { running_ = false; }

 private:
  int epfd_;
  bool running_ = false;
  std::unordered_map<int, Callback> callbacks_;
};

}  // namespace baton
