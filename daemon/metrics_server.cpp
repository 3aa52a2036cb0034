#include "daemon/metrics_server.hpp"

#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/packet.hpp"

namespace baton {

namespace {
std::string reply(const char* status, const std::string& type, const std::string& body) {
  return std::string("HTTP/1.1 ") + status + "\r\nContent-Type: " + type +
         "\r\nContent-Length: " + std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
}
}  // namespace

Status MetricsServer::start() {
  const std::string where = format_endpoint(addr_, port_);
  fd_ = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(addr_);
  a.sin_port = htons(port_);
  if (fd_ < 0 || bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 || listen(fd_, 16) != 0) {
    std::string err = std::strerror(errno);
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
    return make_error("metrics_listen " + where + ": " + err);
  }
  loop_.add(fd_, EPOLLIN, [this](uint32_t) { accept_ready(); });
  return Ok{};
}

void MetricsServer::accept_ready() {
  for (;;) {
    int c = accept4(fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (c < 0) return;
    if (conns_.size() >= kMaxConnections) {
      close(c);  // a scraper retries; the datapath must not pay for a flood
      continue;
    }
    conns_[c].deadline_ms = monotonic_ms() + kTimeoutMs;
    loop_.add(c, EPOLLIN, [this, c](uint32_t events) { on_event(c, events); });
  }
}

void MetricsServer::on_event(int fd, uint32_t events) {
  auto it = conns_.find(fd);
  if (it == conns_.end()) return;
  Conn& c = it->second;
  if (c.out.empty()) {
    char buf[2048];
    for (;;) {
      ssize_t n = read(fd, buf, sizeof(buf));
      if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) return close_conn(fd);
      if (n < 0) break;
      c.in.append(buf, static_cast<size_t>(n));
      if (c.in.size() > kMaxRequestBytes) {
        c.out = reply("431 Request Header Fields Too Large", "text/plain", "request too large\n");
        break;
      }
    }
    if (c.out.empty()) {
      const size_t end = c.in.find("\r\n\r\n");
      if (end == std::string::npos) return;  // more to come
      c.out = respond(c.in.substr(0, end));
    }
  } else if (!(events & EPOLLOUT)) {
    return;
  }
  while (c.sent < c.out.size()) {
    ssize_t n = send(fd, c.out.data() + c.sent, c.out.size() - c.sent, MSG_NOSIGNAL);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      loop_.modify(fd, EPOLLOUT);
      return;
    }
    if (n <= 0) return close_conn(fd);
    c.sent += static_cast<size_t>(n);
  }
  close_conn(fd);
}

std::string MetricsServer::respond(const std::string& head) {
  const std::string line = head.substr(0, head.find("\r\n"));
  const size_t sp1 = line.find(' ');
  const size_t sp2 = line.find(' ', sp1 == std::string::npos ? 0 : sp1 + 1);
  if (sp1 == std::string::npos || sp2 == std::string::npos)
    return reply("400 Bad Request", "text/plain", "bad request line\n");
  const std::string method = line.substr(0, sp1);
  std::string target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  target = target.substr(0, target.find('?'));
  if (target != "/metrics") return reply("404 Not Found", "text/plain", "try /metrics\n");
  if (method != "GET" && method != "HEAD") return reply("405 Method Not Allowed", "text/plain", "GET only\n");
  std::string r = reply("200 OK", "text/plain; version=0.0.4; charset=utf-8", body_());
  if (method == "HEAD") r.resize(r.find("\r\n\r\n") + 4);
  return r;
}

void MetricsServer::close_conn(int fd) {
  loop_.remove(fd);
  close(fd);
  conns_.erase(fd);
}

void MetricsServer::tick(uint64_t now_ms) {
  for (auto it = conns_.begin(); it != conns_.end();) {
    const int fd = it->first;
    const bool late = now_ms >= it->second.deadline_ms;
    ++it;
    if (late) close_conn(fd);
  }
}

void MetricsServer::stop() {
  while (!conns_.empty())
    close_conn(conns_.begin()->first);
  if (fd_ < 0) return;
  loop_.remove(fd_);
  close(fd_);
  fd_ = -1;
}

}  // namespace baton
