// Fuzzes the IPv4/TCP parser and the rewrites: any accepted packet can be translated both ways without
// reading or writing out of bounds, and a packet with valid checksums keeps them valid.
#include <cstdlib>

#include "core/packet.hpp"
#include "core/translate.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace baton;
  Bytes b(data, data + size);
  auto pkt = TcpPacket::parse(b);
  if (!pkt) return 0;
  pkt->fill_checksums();
  Translation t;
  t.frontend_addr = 0x0a000001;
  t.backend_addr = 0x0a000002;
  t.isn1 = size > 8 ? data[size - 1] * 0x01010101u : 7;
  t.isn2 = 0x89abcdef;
  t.ts_offset = 0x12345678;
  t.timestamps = true;
  t.frontend_wscale = 7;
  t.backend_wscale = size % 15;
  rewrite_client_to_backend(t, *pkt);
  rewrite_backend_to_client(t, *pkt);
  if (!pkt->ip_checksum_ok() || !pkt->tcp_checksum_ok()) std::abort();
  return 0;
}
