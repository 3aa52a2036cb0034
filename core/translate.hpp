// Per-flow translation between the front end's view of a connection (what the client believes) and the
// back end's replayed connection: sequence numbers, timestamps, SACK edges, window scale and addresses.
#pragma once

#include <cstdint>

#include "core/packet.hpp"

namespace baton {

struct Translation {
  uint32_t frontend_addr = 0;   // the address the client connected to
  uint32_t backend_addr = 0;    // the address the replayed connection lives on
  uint32_t isn1 = 0;            // front end's initial sequence number (the one the client knows)
  uint32_t isn2 = 0;            // back end's initial sequence number
  uint32_t ts_offset = 0;       // added to back-end TSvals so that the client sees the front end's clock
  bool timestamps = false;      // timestamps were negotiated with the client
  uint8_t frontend_wscale = 0;  // window scale the client applies to our windows
  uint8_t backend_wscale = 0;   // window scale the back end's kernel uses for its windows

  // Back-end sequence number -> client-visible one.
  uint32_t seq_to_client(uint32_t backend_seq) const { return backend_seq + (isn1 - isn2); }
  // Client-visible acknowledgement -> back-end sequence space.
  uint32_t seq_to_backend(uint32_t client_view_seq) const { return client_view_seq + (isn2 - isn1); }
};

// Front end, client -> back end: destination address, ack number, SACK edges and TSecr.
void rewrite_client_to_backend(const Translation& t, TcpPacket& pkt);

// Back end, back end -> client: source address, sequence number, TSval and window.
void rewrite_backend_to_client(const Translation& t, TcpPacket& pkt);

// The window field the client must see for a back-end window `field` (scaled by backend_wscale), clamped
// to 16 bits and never rounded down to zero when the real window is open.
uint16_t rescale_window(uint16_t field, uint8_t backend_wscale, uint8_t frontend_wscale);

}  // namespace baton
