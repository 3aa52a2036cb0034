// Aborting a local TCP socket through sock_diag's SOCK_DESTROY (what `ss -K` does). The kernel's
// tcp_abort() sends the peer a reset at the socket's own sequence numbers and frees the socket: the one
// way to reset a client exactly when only the kernel knows where its connection stands.
#pragma once

#include "core/packet.hpp"
#include "core/result.hpp"

namespace baton {

enum class SocketAbort {
  kAborted,   // the socket was there and is gone (reset sent if its state called for one)
  kNoSocket,  // nothing there: closed already, or only a listener matches the tuple
  kKept,      // a socket of another kind than asked for holds the tuple (a live connection, a TIME_WAIT);
              // a handshake in progress counts as nothing there for kTimeWait (our own replay, usually)
};

enum class SocketScope {
  kConnection,  // a connection's socket in any state but TIME_WAIT
  kTimeWait,    // only a TIME_WAIT (removed without a reset); a live connection on the tuple stays
};

// key names the connection as the datapath does: client (saddr, sport) -> this node (daddr, dport).
// A listening socket is never touched, even though the kernel's lookup falls back to one.
Result<SocketAbort> abort_tcp_socket(const FlowKey& key, SocketScope scope);

}  // namespace baton
