#include "daemon/event_loop.hpp"

#include <sys/epoll.h>
#include <sys/eventfd.h>
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

EventLoop::EventLoop()
    : epfd_(epoll_create1(EPOLL_CLOEXEC)), wake_fd_(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {
  add(wake_fd_, EPOLLIN, [this](uint32_t) { run_posted(); });
}
EventLoop::~EventLoop() {
  close(wake_fd_);
  close(epfd_);
}

void EventLoop::post(std::function<void()> fn) {
  {
    std::unique_lock lock(posted_mu_);
    if (finished_) {
      // run() has returned and will not again: nothing else runs this loop's work now.
      lock.unlock();
      fn();
      return;
    }
    posted_.push_back(std::move(fn));
  }
  const uint64_t one = 1;
  [[maybe_unused]] ssize_t n = write(wake_fd_, &one, sizeof(one));
}

void EventLoop::stop() {
  stopped_ = true;
  post([] {});  // wakes the loop if it waits in epoll_wait
}

void EventLoop::run_posted() {
  uint64_t count = 0;
  [[maybe_unused]] ssize_t n = read(wake_fd_, &count, sizeof(count));
  std::vector<std::function<void()>> work;
  {
    std::lock_guard lock(posted_mu_);
    work.swap(posted_);
  }
  for (auto& fn : work)
    fn();
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
  uint64_t next_tick = monotonic_ms() + tick_ms;
  std::array<epoll_event, 64> events{};
  while (!stopped_) {
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
  {
    std::lock_guard lock(posted_mu_);
    finished_ = true;
  }
  run_posted();
}

}  // namespace baton
