// How far a handed-off connection has closed, as its back end sees both directions: each side's FIN and
// whether the other side acknowledged it, or a reset. The flow is over once both FINs are acknowledged or
// either side reset it.
//
// One tracker owns a flow's close at a time, the one that sees its packets: the tc programs while they
// are attached (bpf/lib/close.h, the same rules in C on the flow's map entry), this one while user space
// sees them (the NFQUEUE datapath, the eBPF datapath detached, packets user space delivers itself). What
// one learns reaches the other: the back end reports every change it makes (NoteClose) into the map entry,
// and the engine reads the map entries back when the programs are detached (Backend::merge_close).
#pragma once

#include <cstdint>

namespace baton {

struct CloseState {
  bool client_fin = false;
  bool server_fin = false;
  bool client_fin_acked = false;  // the server acknowledged the client's FIN
  bool server_fin_acked = false;  // the client acknowledged the server's FIN
  bool reset = false;
  uint32_t client_fin_end = 0;  // sequence number past the client's FIN
  uint32_t server_fin_end = 0;  // past the server's FIN, in the back end's sequence space
  bool operator==(const CloseState&) const = default;

  // A packet of the client's (seq_end: past its data and FIN; ack: in the back end's space).
  void on_client(uint8_t tcp_flags, uint32_t seq_end, uint32_t ack);
  // A packet of the server's, before translation.
  void on_server(uint8_t tcp_flags, uint32_t seq_end, uint32_t ack);
  // What another tracker saw: FINs and acknowledgements are facts, so the union is the truth.
  void merge(const CloseState& other);
  // own_socket: a connection the back end's stack accepted itself, whose bare acknowledgement of the
  // client's FIN a user-space datapath never sees.
  bool closed(bool own_socket = false) const {
    return reset || (client_fin && server_fin && (client_fin_acked || own_socket) && server_fin_acked);
  }
};

}  // namespace baton
