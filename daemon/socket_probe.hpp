// Reading a local TCP socket's tcp_info through sock_diag (what `ss -ti` shows): whether everything it
// sent is acknowledged, and how many bytes went each way. A back end answers a quiesce with it.
#pragma once

#include "core/actions.hpp"
#include "core/result.hpp"

namespace baton {

// key names the connection as the datapath does: client (saddr, sport) -> this node (daddr, dport).
// found = false when no connection (a listener does not count) holds the tuple.
Result<SocketProbe> probe_tcp_socket(const FlowKey& key);

// Bytes written to a connected TCP socket of ours that it has not sent yet (tcpi_notsent_bytes).
Result<uint64_t> tcp_bytes_unsent(int fd);
// Bytes of our stream on a TCP socket the peer's kernel has acknowledged (tcpi_bytes_acked).
Result<uint64_t> tcp_bytes_acked(int fd);
// The kernel's smoothed round-trip time estimate of a connected TCP socket, in microseconds.
Result<uint32_t> tcp_rtt_us(int fd);

}  // namespace baton
