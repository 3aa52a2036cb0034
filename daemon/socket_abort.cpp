#include "daemon/socket_abort.hpp"

#include "daemon/sock_diag.hpp"

#include <arpa/inet.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <optional>

namespace baton {

using sock_diag::exchange;
using sock_diag::NetlinkSocket;
using sock_diag::socket_id;

Result<SocketAbort> abort_tcp_socket(const FlowKey& key, SocketScope scope) {
  NetlinkSocket nl;
  if (nl.fd() < 0) return make_error(std::string("sock_diag socket: ") + std::strerror(errno));
  const inet_diag_sockid id = socket_id(key);
  // Look the socket up first: the kernel's lookup by 4-tuple falls back to a listener on the port, and
  // destroying that would take the web server's listening socket down. The answer's cookie then pins the
  // destroy request to exactly this connection.
  auto found = exchange(nl.fd(), SOCK_DIAG_BY_FAMILY, 0, id);
  if (!found) return make_error(found.error());
  if (found->error == ENOENT) return SocketAbort::kNoSocket;
  if (found->error != 0) return make_error(std::string("sock_diag lookup: ") + std::strerror(found->error));
  const inet_diag_msg& m = *found->msg;
  if (m.idiag_state == TCP_LISTEN || m.id.idiag_dst[0] != id.idiag_dst[0] ||
      m.id.idiag_dport != id.idiag_dport) {
    return SocketAbort::kNoSocket;
  }
  if (scope == SocketScope::kTimeWait && m.idiag_state != TCP_TIME_WAIT) {
    // A handshake in progress (a request socket, which sock_diag reports as SYN_RECV) is most likely our
    // own replay: the SYN sent again makes it answer. Anything synchronized is somebody's live connection.
    return m.idiag_state == TCP_SYN_RECV ? SocketAbort::kNoSocket : SocketAbort::kKept;
  }
  if (scope == SocketScope::kConnection && m.idiag_state == TCP_TIME_WAIT) return SocketAbort::kKept;
  inet_diag_sockid exact = id;
  exact.idiag_cookie[0] = m.id.idiag_cookie[0];
  exact.idiag_cookie[1] = m.id.idiag_cookie[1];
  auto destroyed = exchange(nl.fd(), SOCK_DESTROY, NLM_F_ACK, exact);
  if (!destroyed) return make_error(destroyed.error());
  if (destroyed->error == ENOENT) return SocketAbort::kNoSocket;
  if (destroyed->error != 0) {
    return make_error(std::string("sock_diag destroy: ") + std::strerror(destroyed->error));
  }
  return SocketAbort::kAborted;
}

}  // namespace baton
