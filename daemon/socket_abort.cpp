#include "daemon/socket_abort.hpp"

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

namespace {

struct Request {
  nlmsghdr hdr;
  inet_diag_req_v2 req;
};

class NetlinkSocket {
 public:
  NetlinkSocket() : fd_(socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG)) {}
  ~NetlinkSocket() {
    if (fd_ >= 0) close(fd_);
  }
  NetlinkSocket(const NetlinkSocket&) = delete;
  NetlinkSocket& operator=(const NetlinkSocket&) = delete;
  int fd() const { return fd_; }

 private:
  int fd_;
};

// The exact 4-tuple, from this node's side: source = us, destination = the client.
inet_diag_sockid socket_id(const FlowKey& key) {
  inet_diag_sockid id{};
  id.idiag_sport = htons(key.dport);
  id.idiag_dport = htons(key.sport);
  id.idiag_src[0] = htonl(key.daddr);
  id.idiag_dst[0] = htonl(key.saddr);
  id.idiag_cookie[0] = INET_DIAG_NOCOOKIE;
  id.idiag_cookie[1] = INET_DIAG_NOCOOKIE;
  return id;
}

// Sends one request and reads its one answer: a socket description or an error code (0 = ack).
struct Answer {
  int error = 0;
  std::optional<inet_diag_msg> msg;
};

Result<Answer> exchange(int fd, uint16_t type, uint16_t flags, const inet_diag_sockid& id) {
  Request r{};
  r.hdr.nlmsg_len = sizeof(r);
  r.hdr.nlmsg_type = type;
  r.hdr.nlmsg_flags = NLM_F_REQUEST | flags;
  r.req.sdiag_family = AF_INET;
  r.req.sdiag_protocol = IPPROTO_TCP;
  r.req.idiag_states = ~0u;
  r.req.id = id;
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  if (sendto(fd, &r, sizeof(r), 0, reinterpret_cast<sockaddr*>(&kernel), sizeof(kernel)) < 0) {
    return make_error(std::string("sock_diag send: ") + std::strerror(errno));
  }
  alignas(nlmsghdr) char buf[8192];
  ssize_t n = recv(fd, buf, sizeof(buf), 0);
  if (n < 0) return make_error(std::string("sock_diag receive: ") + std::strerror(errno));
  auto* h = reinterpret_cast<nlmsghdr*>(buf);
  if (!NLMSG_OK(h, static_cast<unsigned>(n))) return make_error("sock_diag: truncated answer");
  Answer a;
  if (h->nlmsg_type == NLMSG_ERROR) {
    if (h->nlmsg_len < NLMSG_LENGTH(sizeof(nlmsgerr))) return make_error("sock_diag: truncated error");
    a.error = -static_cast<const nlmsgerr*>(NLMSG_DATA(h))->error;
    return a;
  }
  if (h->nlmsg_len < NLMSG_LENGTH(sizeof(inet_diag_msg))) return make_error("sock_diag: truncated socket");
  inet_diag_msg m;
  std::memcpy(&m, NLMSG_DATA(h), sizeof(m));
  a.msg = m;
  return a;
}

}  // namespace

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
