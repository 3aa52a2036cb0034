#include "core/close_state.hpp"

#include "core/bytes.hpp"
#include "core/packet.hpp"

namespace baton {

void CloseState::on_client(uint8_t tcp_flags, uint32_t seq_end, uint32_t ack) {
  if (tcp_flags & tcp_flag::kRst) reset = true;
  if ((tcp_flags & tcp_flag::kFin) && !client_fin) {
    client_fin = true;
    client_fin_end = seq_end;
  }
  if ((tcp_flags & tcp_flag::kAck) && server_fin && seq_after_eq(ack, server_fin_end))
    server_fin_acked = true;
}

void CloseState::on_server(uint8_t tcp_flags, uint32_t seq_end, uint32_t ack) {
  if (tcp_flags & tcp_flag::kRst) reset = true;
  if ((tcp_flags & tcp_flag::kFin) && !server_fin) {
    server_fin = true;
    server_fin_end = seq_end;
  }
  if ((tcp_flags & tcp_flag::kAck) && client_fin && seq_after_eq(ack, client_fin_end))
    client_fin_acked = true;
}

void CloseState::merge(const CloseState& o) {
  if (o.client_fin && !client_fin) {
    client_fin = true;
    client_fin_end = o.client_fin_end;
  }
  if (o.server_fin && !server_fin) {
    server_fin = true;
    server_fin_end = o.server_fin_end;
  }
  client_fin_acked |= o.client_fin_acked;
  server_fin_acked |= o.server_fin_acked;
  reset |= o.reset;
}

}  // namespace baton
