// Whether a peer's kernel has stopped acknowledging what this node sends it on a control connection: the
// oldest byte not acknowledged yet was queued more than a limit ago. A peer's kernel acknowledges within a
// round trip, or with its next heartbeat when it delays the ACK: longer silence means the link or the
// host is gone (its batond being slow does not count, its kernel still acknowledges). Detected long
// before the peer is declared down (no heartbeat for peer_down_ms), so that new handoffs go to another
// holder meanwhile instead of into a connection that no longer delivers.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <utility>

namespace baton {

class StallWatch {
 public:
  // The stream's bytes up to `stream_end` (counted from the connection's start) were queued at now_ms.
  // Marks queued within the same millisecond share one entry: at most one per millisecond is kept.
  void queued(uint64_t stream_end, uint64_t now_ms) {
    if (!marks_.empty() && marks_.back().second == now_ms) {
      marks_.back().first = stream_end;
      return;
    }
    marks_.emplace_back(stream_end, now_ms);
  }

  // The peer's kernel acknowledged the stream's first `acked` bytes.
  void acked(uint64_t acked) {
    while (!marks_.empty() && marks_.front().first <= acked)
      marks_.pop_front();
  }

  // Something queued more than limit_ms ago is not acknowledged (as far as the last acked() knew).
  bool stalled(uint64_t now_ms, uint64_t limit_ms) const {
    return !marks_.empty() && now_ms >= marks_.front().second + limit_ms;
  }

  size_t marks() const { return marks_.size(); }

 private:
  std::deque<std::pair<uint64_t, uint64_t>> marks_;  // (stream end, queued at ms), oldest first
};

}  // namespace baton
