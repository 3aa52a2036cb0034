#include "daemon/repaired_socket.hpp"

#include <linux/tcp.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

namespace baton {

namespace {
// TCP option kinds as TCP_REPAIR_OPTIONS takes them (include/net/tcp.h; not in the uapi headers).
constexpr uint32_t kOptMss = 2;
constexpr uint32_t kOptWindow = 3;
constexpr uint32_t kOptSackPerm = 4;
constexpr uint32_t kOptTimestamp = 8;

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

template <typename T>
Status set(int fd, int level, int name, const T& value, const char* what) {
  if (::setsockopt(fd, level, name, &value, sizeof(value)) != 0)
    return make_error(std::string(what) + ": " + std::strerror(errno));
  return Ok{};
}

sockaddr_in address(uint32_t addr, uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(addr);
  a.sin_port = htons(port);
  return a;
}
}  // namespace

Status answer_on_repaired_socket(const RepairedConnection& c, std::string_view response) {
  Fd s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (s.get() < 0) return make_error(std::string("socket: ") + std::strerror(errno));
  // Repair mode: bind() ignores the web server's listener on the port, connect() sends nothing and
  // leaves the socket established at the sequence numbers set below.
  if (auto r = set(s.get(), IPPROTO_TCP, TCP_REPAIR, 1, "TCP_REPAIR"); !r) return r;
  const sockaddr_in local = address(c.key.daddr, c.key.dport);
  if (::bind(s.get(), reinterpret_cast<const sockaddr*>(&local), sizeof(local)) != 0)
    return make_error(std::string("bind: ") + std::strerror(errno));
  if (auto r = set(s.get(), IPPROTO_TCP, TCP_REPAIR_QUEUE, int{TCP_SEND_QUEUE}, "TCP_REPAIR_QUEUE"); !r)
    return r;
  if (auto r = set(s.get(), IPPROTO_TCP, TCP_QUEUE_SEQ, c.snd_nxt, "TCP_QUEUE_SEQ (send)"); !r) return r;
  if (auto r = set(s.get(), IPPROTO_TCP, TCP_REPAIR_QUEUE, int{TCP_RECV_QUEUE}, "TCP_REPAIR_QUEUE"); !r)
    return r;
  if (auto r = set(s.get(), IPPROTO_TCP, TCP_QUEUE_SEQ, c.rcv_nxt, "TCP_QUEUE_SEQ (receive)"); !r) return r;
  if (c.timestamps) {
    // Our clock continues from the TSval the client saw in the SYN/ACK, never below it (the client
    // would drop the answer by PAWS). The value's low bit asks for microsecond timestamps: rounded up to
    // an even value, the clock stays in milliseconds.
    const uint32_t from = (c.tsval + 1) & ~uint32_t{1};
    if (auto r = set(s.get(), IPPROTO_TCP, TCP_TIMESTAMP, from, "TCP_TIMESTAMP"); !r) return r;
  }
  const sockaddr_in peer = address(c.key.saddr, c.key.sport);
  if (::connect(s.get(), reinterpret_cast<const sockaddr*>(&peer), sizeof(peer)) != 0)
    return make_error(std::string("connect (repair): ") + std::strerror(errno));
  // What the handshake agreed on.
  std::vector<tcp_repair_opt> opts{{kOptMss, c.mss}};
  if (c.window_scale) opts.push_back({kOptWindow, uint32_t{c.snd_wscale} | uint32_t{c.rcv_wscale} << 16});
  if (c.sack) opts.push_back({kOptSackPerm, 0});
  if (c.timestamps) opts.push_back({kOptTimestamp, 0});
  if (::setsockopt(s.get(), IPPROTO_TCP, TCP_REPAIR_OPTIONS, opts.data(),
                   static_cast<socklen_t>(opts.size() * sizeof(tcp_repair_opt))) != 0)
    return make_error(std::string("TCP_REPAIR_OPTIONS: ") + std::strerror(errno));
  tcp_repair_window w{};
  w.snd_wl1 = c.rcv_nxt;
  w.snd_wnd = c.snd_wnd;
  w.max_window = c.snd_wnd;
  w.rcv_wnd = c.rcv_wnd;
  w.rcv_wup = c.rcv_nxt;
  if (auto r = set(s.get(), IPPROTO_TCP, TCP_REPAIR_WINDOW, w, "TCP_REPAIR_WINDOW"); !r) return r;
  // Out of repair mode without a window probe: the answer itself is the next segment.
  if (auto r = set(s.get(), IPPROTO_TCP, TCP_REPAIR, int{TCP_REPAIR_OFF_NO_WP}, "TCP_REPAIR off"); !r)
    return r;
  // A fresh socket's send buffer takes a small answer whole; a short write is an error, not a wait.
  const ssize_t n = ::send(s.get(), response.data(), response.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
  if (n != static_cast<ssize_t>(response.size()))
    return make_error(n < 0 ? std::string("send: ") + std::strerror(errno)
                            : std::string("send: short write"));
  // close() sends the FIN after the answer; the kernel finishes the connection as an orphan.
  return Ok{};
}

}  // namespace baton
