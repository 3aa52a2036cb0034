#include "daemon/socket_probe.hpp"

// The kernel's own tcp_info (glibc's netinet/tcp.h has an older, shorter one): not mixed with
// netinet/tcp.h in this file.
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <linux/tcp.h>

#include <netinet/in.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "daemon/sock_diag.hpp"

namespace baton {

namespace {
constexpr uint8_t kTcpEstablished = 1;  // include/net/tcp_states.h
constexpr uint8_t kTcpListen = 10;
}  // namespace

Result<SocketProbe> probe_tcp_socket(const FlowKey& key) {
  sock_diag::NetlinkSocket nl;
  if (nl.fd() < 0) return make_error(std::string("sock_diag socket: ") + std::strerror(errno));
  const inet_diag_sockid id = sock_diag::socket_id(key);
  auto a = sock_diag::exchange(nl.fd(), SOCK_DIAG_BY_FAMILY, 0, id, 1 << (INET_DIAG_INFO - 1));
  if (!a) return make_error(a.error());
  SocketProbe p;
  if (a->error == ENOENT) return p;
  if (a->error != 0) return make_error(std::string("sock_diag lookup: ") + std::strerror(a->error));
  const inet_diag_msg& m = *a->msg;
  // The kernel's lookup falls back to a listener on the port: that is not the connection.
  if (m.idiag_state == kTcpListen || m.id.idiag_dst[0] != id.idiag_dst[0] ||
      m.id.idiag_dport != id.idiag_dport)
    return p;
  p.found = true;
  p.established = m.idiag_state == kTcpEstablished;
  const Bytes& attrs = a->attributes;
  for (size_t off = 0; off + sizeof(rtattr) <= attrs.size();) {
    rtattr ra;
    std::memcpy(&ra, attrs.data() + off, sizeof(ra));
    if (ra.rta_len < sizeof(rtattr) || off + ra.rta_len > attrs.size()) break;
    if (ra.rta_type == INET_DIAG_INFO) {
      tcp_info ti{};
      const size_t n = std::min<size_t>(ra.rta_len - RTA_LENGTH(0), sizeof(ti));
      std::memcpy(&ti, attrs.data() + off + RTA_LENGTH(0), n);
      if (n < offsetof(tcp_info, tcpi_bytes_received) + sizeof(ti.tcpi_bytes_received) ||
          n < offsetof(tcp_info, tcpi_notsent_bytes) + sizeof(ti.tcpi_notsent_bytes)) {
        return make_error("sock_diag: tcp_info too short for byte counts (kernel older than 4.6)");
      }
      p.unacked = ti.tcpi_unacked;
      p.notsent = ti.tcpi_notsent_bytes;
      p.bytes_acked = ti.tcpi_bytes_acked;
      p.bytes_received = ti.tcpi_bytes_received;
      p.unread = m.idiag_rqueue;  // established: rcv_nxt - copied_seq
      p.since_sent_ms = ti.tcpi_last_data_sent;
      p.since_received_ms = ti.tcpi_last_data_recv;
      return p;
    }
    off += RTA_ALIGN(ra.rta_len);
  }
  return make_error("sock_diag: no tcp_info in the answer");
}

namespace {
Result<tcp_info> info_of(int fd, size_t needed, const char* what) {
  tcp_info ti{};
  socklen_t len = sizeof(ti);
  if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0)
    return make_error(std::string("TCP_INFO: ") + std::strerror(errno));
  if (len < needed)
    return make_error(std::string("TCP_INFO too short for ") + what + " (kernel older than 4.6)");
  return ti;
}
}  // namespace

Result<uint64_t> tcp_bytes_unsent(int fd) {
  auto ti = info_of(fd, offsetof(tcp_info, tcpi_notsent_bytes) + sizeof(uint32_t), "tcpi_notsent_bytes");
  if (!ti) return make_error(ti.error());
  return static_cast<uint64_t>(ti->tcpi_notsent_bytes);
}

Result<uint32_t> tcp_rtt_us(int fd) {
  auto ti = info_of(fd, offsetof(tcp_info, tcpi_rtt) + sizeof(uint32_t), "tcpi_rtt");
  if (!ti) return make_error(ti.error());
  return ti->tcpi_rtt;
}

Result<uint64_t> tcp_bytes_acked(int fd) {
  auto ti = info_of(fd, offsetof(tcp_info, tcpi_bytes_acked) + sizeof(uint64_t), "tcpi_bytes_acked");
  if (!ti) return make_error(ti.error());
  return static_cast<uint64_t>(ti->tcpi_bytes_acked);
}

}  // namespace baton
