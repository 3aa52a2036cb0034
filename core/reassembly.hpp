// The client's held request bytes, collected from segments that may arrive out of order or repeated.
#pragma once

#include <cstdint>
#include <map>

#include "core/bytes.hpp"

namespace baton {

class Reassembly {
 public:
  void reset(uint32_t base_seq) {
    base_ = base_seq;
    pieces_.clear();
    contiguous_.clear();
  }
  // Adds a segment's payload. Returns false when every byte of it was already held (a retransmission).
  bool add(uint32_t seq, ByteView payload);
  // Moves the base on to `seq` (at most the contiguous end): the bytes before it are no longer held.
  void advance(uint32_t seq);
  // Bytes from base onwards without a gap.
  const Bytes& contiguous() const { return contiguous_; }
  uint32_t base() const { return base_; }
  // Sequence number just past the contiguous bytes.
  uint32_t contiguous_end() const { return base_ + static_cast<uint32_t>(contiguous_.size()); }
  size_t held_bytes() const;

 private:
  uint32_t base_ = 0;
  Bytes contiguous_;
  std::map<uint32_t, Bytes> pieces_;  // out-of-order pieces by offset from base
};

}  // namespace baton
