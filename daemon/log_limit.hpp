// Warnings caused by what others send (clients, peers, anyone reaching the control port) are rate
// limited: a flood of bad input must not become a flood of log lines, and must not hide the lines that
// matter. Each kind of warning has its own limiter: at most `burst` lines per `interval_ms`, and the
// first line let through after some were held back says how many.
#pragma once

#include <cstdint>
#include <string>

namespace baton {

class LogLimiter {
 public:
  explicit LogLimiter(uint64_t interval_ms = 10'000, uint32_t burst = 5)
      : interval_ms_(interval_ms), burst_(burst) {}

  // Whether a line may be logged at now_ms. When it may, *held_back is how many were not since the last
  // one that was (then reset).
  bool allow(uint64_t now_ms, uint64_t* held_back) {
    if (now_ms >= window_start_ + interval_ms_ || !started_) {
      window_start_ = now_ms;
      in_window_ = 0;
      started_ = true;
    }
    if (in_window_ >= burst_) {
      ++held_back_;
      return false;
    }
    ++in_window_;
    *held_back = held_back_;
    held_back_ = 0;
    return true;
  }

  // " (N similar lines held back)" or nothing: for the end of the line let through.
  static std::string note(uint64_t held_back) {
    return held_back == 0 ? std::string() : " (" + std::to_string(held_back) + " similar lines held back)";
  }

 private:
  uint64_t interval_ms_;
  uint32_t burst_;
  bool started_ = false;
  uint64_t window_start_ = 0;
  uint32_t in_window_ = 0;
  uint64_t held_back_ = 0;
};

}  // namespace baton
