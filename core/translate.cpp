#include "core/translate.hpp"

#include <algorithm>

namespace baton {

uint16_t rescale_window(uint16_t field, uint8_t backend_wscale, uint8_t frontend_wscale) {
  if (backend_wscale == frontend_wscale) return field;
  uint64_t bytes = uint64_t{field} << backend_wscale;
  uint64_t scaled = bytes >> frontend_wscale;
  if (scaled == 0 && bytes != 0) scaled = 1;
  return static_cast<uint16_t>(std::min<uint64_t>(scaled, 0xffff));
}

void rewrite_client_to_backend(const Translation& t, TcpPacket& pkt) {
  pkt.set_daddr(t.backend_addr);
  if (pkt.has(tcp_flag::kAck)) pkt.set_ack(t.seq_to_backend(pkt.ack()));
  const auto blocks = pkt.sack_blocks();
  for (size_t i = 0; i < pkt.options().sack_blocks; ++i) {
    // SACK edges name the sender's (our) data, so they move like the ack number (nf_ct_sack_adjust).
    pkt.set_sack_block(i, t.seq_to_backend(blocks[i].first), t.seq_to_backend(blocks[i].second));
  }
  if (t.timestamps && pkt.options().timestamp_off && pkt.has(tcp_flag::kAck)) {
    pkt.set_tsecr(*pkt.tsecr() - t.ts_offset);
  }
}

void rewrite_backend_to_client(const Translation& t, TcpPacket& pkt) {
  pkt.set_saddr(t.frontend_addr);
  pkt.set_seq(t.seq_to_client(pkt.seq()));
  if (t.timestamps && pkt.options().timestamp_off) pkt.set_tsval(*pkt.tsval() + t.ts_offset);
  if (!pkt.has(tcp_flag::kSyn)) {
    pkt.set_window(rescale_window(pkt.window(), t.backend_wscale, t.frontend_wscale));
  }
}

}  // namespace baton
