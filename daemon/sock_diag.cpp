#include "daemon/sock_diag.hpp"

#include <arpa/inet.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

namespace baton::sock_diag {

namespace {
struct Request {
  nlmsghdr hdr;
  inet_diag_req_v2 req;
};
}  // namespace

NetlinkSocket::NetlinkSocket() : fd_(socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG)) {}
NetlinkSocket::~NetlinkSocket() {
  if (fd_ >= 0) close(fd_);
}

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

namespace {
Result<int> send_request(int fd, uint16_t type, uint16_t flags, uint32_t states, const inet_diag_sockid& id,
                         uint8_t extensions) {
  Request r{};
  r.hdr.nlmsg_len = sizeof(r);
  r.hdr.nlmsg_type = type;
  r.hdr.nlmsg_flags = NLM_F_REQUEST | flags;
  r.req.sdiag_family = AF_INET;
  r.req.sdiag_protocol = IPPROTO_TCP;
  r.req.idiag_ext = extensions;
  r.req.idiag_states = states;
  r.req.id = id;
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  if (sendto(fd, &r, sizeof(r), 0, reinterpret_cast<sockaddr*>(&kernel), sizeof(kernel)) < 0) {
    return make_error(std::string("sock_diag send: ") + std::strerror(errno));
  }
  return 0;
}
}  // namespace

Result<Answer> exchange(int fd, uint16_t type, uint16_t flags, const inet_diag_sockid& id,
                        uint8_t extensions) {
  if (auto s = send_request(fd, type, flags, ~0u, id, extensions); !s) return make_error(s.error());
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
  const auto* attrs = static_cast<const uint8_t*>(NLMSG_DATA(h)) + NLMSG_ALIGN(sizeof(inet_diag_msg));
  const size_t attr_len = h->nlmsg_len - NLMSG_LENGTH(NLMSG_ALIGN(sizeof(inet_diag_msg)));
  if (h->nlmsg_len >= NLMSG_LENGTH(NLMSG_ALIGN(sizeof(inet_diag_msg))))
    a.attributes.assign(attrs, attrs + attr_len);
  return a;
}

Result<uint32_t> count_established(int fd, uint32_t addr, uint16_t port) {
  constexpr uint32_t kEstablished = 1u << 1;  // TCP_ESTABLISHED
  const uint16_t want_port = htons(port);
  // The kernel skips sockets of other local ports itself (tcp_diag_dump): only the web server's
  // connections are described and copied out, not every other established socket of the host.
  inet_diag_sockid only_port{};
  only_port.idiag_sport = want_port;
  if (auto s = send_request(fd, SOCK_DIAG_BY_FAMILY, NLM_F_DUMP, kEstablished, only_port, 0); !s)
    return make_error(s.error());
  const uint32_t want_addr = htonl(addr);
  uint32_t count = 0;
  alignas(nlmsghdr) char buf[32768];
  for (;;) {
    ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n < 0) return make_error(std::string("sock_diag receive: ") + std::strerror(errno));
    auto len = static_cast<unsigned>(n);
    for (auto* h = reinterpret_cast<nlmsghdr*>(buf); NLMSG_OK(h, len); h = NLMSG_NEXT(h, len)) {
      if (h->nlmsg_type == NLMSG_DONE) return count;
      if (h->nlmsg_type == NLMSG_ERROR) return make_error("sock_diag dump refused");
      if (h->nlmsg_len < NLMSG_LENGTH(sizeof(inet_diag_msg))) continue;
      inet_diag_msg m;
      std::memcpy(&m, NLMSG_DATA(h), sizeof(m));
      if (m.id.idiag_sport == want_port && m.id.idiag_src[0] == want_addr) ++count;
    }
  }
}

}  // namespace baton::sock_diag
