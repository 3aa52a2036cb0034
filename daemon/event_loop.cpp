#include "daemon/event_loop.hpp"

#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <vector>

namespace baton {

uint64_t monotonic_ms() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000 + static_cast<uint64_t>(ts.tv_nsec) / 1'000'000;
}

EventLoop::EventLoop() : epfd_(epoll_create1(EPOLL_CLOEXEC)) {}
EventLoop::~EventLoop() {
  close(epfd_);
}

void EventLoop::add(int fd, uint32_t events, Callback cb) {
  epoll_event ev{};
  ev.events = events;
  ev.data.fd = fd;
  epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev);
  callbacks_[fd] = std::move(cb);
}

void EventLoop::modify(int fd, uint32_t events) {
  epoll_event ev{};
  ev.events = events;
  ev.data.fd = fd;
  epoll_ctl(epfd_, EPOLL_CTL_MOD, fd, &ev);
}

void EventLoop::remove(int fd) {
  epoll_ctl(epfd_, EPOLL_CTL_DEL, fd, nullptr);
  callbacks_.erase(fd);
}

void EventLoop::run(uint64_t tick_ms, const std::function<void(uint64_t)>& tick) {
  running_ = true;
  uint64_t next_tick = monotonic_ms() + tick_ms;
  std::array<epoll_event, 64> events{};
  while (running_) {
    uint64_t now = monotonic_ms();
    int timeout = now >= next_tick ? 0 : static_cast<int>(next_tick - now);
    int n = epoll_wait(epfd_, events.data(), static_cast<int>(events.size()), timeout);
    if (n < 0 && errno != EINTR) break;
    for (int i = 0; i < n; ++i) {
      // A callback may remove other descriptors: look each one up afresh.
      auto it = callbacks_.find(events[static_cast<size_t>(i)].data.fd);
      if (it == callbacks_.end()) continue;
      Callback cb = it->second;
      cb(events[static_cast<size_t>(i)].events);
    }
    end_round();
    now = monotonic_ms();
    if (now >= next_tick) {
      tick(now);
      next_tick = now + tick_ms;
      end_round();
    }
  }
}

}  // namespace baton
