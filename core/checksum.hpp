// Internet checksum (RFC 1071) and its incremental update (RFC 1624) over arbitrary byte ranges.
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/bytes.hpp"

namespace baton {

// One's-complement sum of a byte range, folded to 16 bits, not inverted. An odd trailing byte is padded.
uint16_t ones_sum(ByteView data, uint32_t initial = 0);

// The full IPv4 header checksum, as it belongs in the header (bytes 10-11 taken as zero).
uint16_t ipv4_header_checksum(ByteView ip_header);

// The full TCP checksum of a segment (header + payload) with the IPv4 pseudo header.
uint16_t tcp_checksum(uint32_t saddr, uint32_t daddr, ByteView segment);

// Replaces bytes [off, off + replacement.size()) of `region` and updates the checksum stored at
// `csum_off` incrementally (RFC 1624: HC' = ~(~HC + ~m + m')). Offsets are relative to the start of the
// checksummed region, which is what keeps 16-bit word alignment right for fields at odd offsets.
void replace_and_update(MutableBytes region, size_t csum_off, size_t off, ByteView replacement);

// Adjusts a checksum for a change of data that lives outside the region (the TCP pseudo header when an
// IP address changes): old and new are equally long, aligned on 16-bit words.
void update_for_external_change(MutableBytes region, size_t csum_off, ByteView old_words, ByteView new_words);

}  // namespace baton
