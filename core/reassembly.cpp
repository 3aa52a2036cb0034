#include "core/reassembly.hpp"

#include <algorithm>

namespace baton {

bool Reassembly::add(uint32_t seq, ByteView payload) {
  if (payload.empty()) return false;
  // Offsets are taken modulo 2^32 from the base; anything "before" the base is old data.
  int64_t off = static_cast<int32_t>(seq - base_);
  int64_t end = off + static_cast<int64_t>(payload.size());
  auto have = static_cast<int64_t>(contiguous_.size());
  if (end <= have) return false;
  if (off < 0) {
    payload = payload.subspan(static_cast<size_t>(-off));
    off = 0;
  }
  bool fresh = true;
  if (off > have) {
    auto it = pieces_.find(static_cast<uint32_t>(off));
    if (it != pieces_.end() && it->second.size() >= payload.size()) return false;
    pieces_[static_cast<uint32_t>(off)] = Bytes(payload.begin(), payload.end());
    return fresh;
  }
  contiguous_.insert(contiguous_.end(), payload.begin() + (have - off), payload.end());
  // Pull in pieces that now touch or overlap the contiguous end.
  for (auto it = pieces_.begin(); it != pieces_.end();) {
    auto p_off = static_cast<int64_t>(it->first);
    auto cur = static_cast<int64_t>(contiguous_.size());
    if (p_off > cur) break;
    auto p_end = p_off + static_cast<int64_t>(it->second.size());
    if (p_end > cur)
      contiguous_.insert(contiguous_.end(), it->second.begin() + (cur - p_off), it->second.end());
    it = pieces_.erase(it);
  }
  return fresh;
}

void Reassembly::advance(uint32_t seq) {
  const size_t n = std::min<size_t>(static_cast<uint32_t>(seq - base_), contiguous_.size());
  contiguous_.erase(contiguous_.begin(), contiguous_.begin() + static_cast<std::ptrdiff_t>(n));
  base_ += static_cast<uint32_t>(n);
  // Pieces lie past the contiguous bytes, so past n: their offsets only shrink.
  std::map<uint32_t, Bytes> moved;
  for (auto& [off, b] : pieces_)
    moved.emplace(off - static_cast<uint32_t>(n), std::move(b));
  pieces_ = std::move(moved);
}

size_t Reassembly::held_bytes() const {
  size_t n = contiguous_.size();
  for (const auto& [off, b] : pieces_)
    n += b.size();
  return n;
}

}  // namespace baton
