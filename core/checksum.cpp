#include "core/checksum.hpp"

#include <algorithm>
#include <array>

namespace baton {

namespace {
uint16_t fold(uint64_t sum) {
  while (sum >> 16)
    sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(sum);
}
}  // namespace

uint16_t ones_sum(ByteView data, uint32_t initial) {
  uint64_t sum = initial;
  size_t i = 0;
  for (; i + 1 < data.size(); i += 2)
    sum += load16(data, i);
  if (i < data.size()) sum += static_cast<uint32_t>(data[i]) << 8;
  return fold(sum);
}

uint16_t ipv4_header_checksum(ByteView ip_header) {
  uint64_t sum = 0;
  for (size_t i = 0; i + 1 < ip_header.size(); i += 2) {
    if (i == 10) continue;
    sum += load16(ip_header, i);
  }
  return static_cast<uint16_t>(~fold(sum));
}

uint16_t tcp_checksum(uint32_t saddr, uint32_t daddr, ByteView segment) {
  uint64_t sum = (saddr >> 16) + (saddr & 0xffff) + (daddr >> 16) + (daddr & 0xffff) + 6 + segment.size();
  for (size_t i = 0; i + 1 < segment.size(); i += 2) {
    if (i == 16) continue;  // the checksum field itself counts as zero
    sum += load16(segment, i);
  }
  if (segment.size() % 2) sum += static_cast<uint32_t>(segment.back()) << 8;
  return static_cast<uint16_t>(~fold(sum));
}

void update_for_external_change(MutableBytes region, size_t csum_off, ByteView old_words,
                                ByteView new_words) {
  // RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m'), where ~m is added word by word.
  uint64_t sum = static_cast<uint16_t>(~load16(region, csum_off));
  for (size_t i = 0; i + 1 < old_words.size(); i += 2)
    sum += static_cast<uint16_t>(~load16(old_words, i));
  for (size_t i = 0; i + 1 < new_words.size(); i += 2)
    sum += load16(new_words, i);
  store16(region, csum_off, static_cast<uint16_t>(~fold(sum)));
}

void replace_and_update(MutableBytes region, size_t csum_off, size_t off, ByteView replacement) {
  // Take the smallest 16-bit aligned window around the change, so that a field at an odd offset is
  // summed exactly as the receiver will sum it. Bytes past the region's end count as zero padding.
  const size_t start = off & ~size_t{1};
  const size_t end = std::min(region.size() + 1, (off + replacement.size() + 1) & ~size_t{1});
  std::array<uint8_t, 64> before{};
  std::array<uint8_t, 64> after{};
  size_t len = end - start;
  if (len > before.size()) {
    // Larger edits are not on any hot path: apply in pieces.
    size_t done = 0;
    while (done < replacement.size()) {
      size_t n = std::min<size_t>(32, replacement.size() - done);
      replace_and_update(region, csum_off, off + done, replacement.subspan(done, n));
      done += n;
    }
    return;
  }
  for (size_t i = 0; i < len; ++i)
    before[i] = start + i < region.size() ? region[start + i] : 0;
  std::copy(replacement.begin(), replacement.end(), region.begin() + static_cast<std::ptrdiff_t>(off));
  for (size_t i = 0; i < len; ++i)
    after[i] = start + i < region.size() ? region[start + i] : 0;
  // The checksum field may lie inside the window; it must not take part in its own update.
  if (csum_off >= start && csum_off < end) {
    size_t k = csum_off - start;
    before[k] = before[k + 1] = after[k] = after[k + 1] = 0;
  }
  update_for_external_change(region, csum_off, ByteView(before.data(), len), ByteView(after.data(), len));
}

}  // namespace baton
