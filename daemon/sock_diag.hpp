// sock_diag (NETLINK_SOCK_DIAG) requests about one TCP socket: the lookups and destroys of
// socket_abort.cpp and the tcp_info reads of socket_probe.cpp.
#pragma once

#include <linux/inet_diag.h>

#include <optional>

#include "core/bytes.hpp"
#include "core/packet.hpp"
#include "core/result.hpp"

namespace baton::sock_diag {

class NetlinkSocket {
 public:
  NetlinkSocket();
  ~NetlinkSocket();
  NetlinkSocket(const NetlinkSocket&) = delete;
  NetlinkSocket& operator=(const NetlinkSocket&) = delete;
  int fd() const { return fd_; }

 private:
  int fd_;
};

// The exact 4-tuple, from this node's side: source = us, destination = the client.
inet_diag_sockid socket_id(const FlowKey& key);

// One request, its one answer: a socket description (with the attributes asked for in `extensions`,
// INET_DIAG_* bits) or an error code (0 = ack).
struct Answer {
  int error = 0;
  std::optional<inet_diag_msg> msg;
  Bytes attributes;  // the rtattrs after the socket description
};
Result<Answer> exchange(int fd, uint16_t type, uint16_t flags, const inet_diag_sockid& id,
                        uint8_t extensions = 0);

// Established TCP connections from addr:port (host order): the connections a web server listening there
// holds. One dump of the kernel's TCP sockets.
Result<uint32_t> count_established(int fd, uint32_t addr, uint16_t port);

}  // namespace baton::sock_diag
