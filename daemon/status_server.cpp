#include "daemon/status_server.hpp"

#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

namespace baton {

Status StatusServer::start() {
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  if (path_.size() >= sizeof(a.sun_path)) return make_error("status socket path too long: " + path_);
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(path_).parent_path(), ec);
  // A socket file left by a crashed batond is stale only if nobody answers on it.
  int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  std::strncpy(a.sun_path, path_.c_str(), sizeof(a.sun_path) - 1);
  bool alive = connect(probe, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0;
  close(probe);
  if (alive) return make_error("status socket " + path_ + " is in use: is another batond running?");
  unlink(path_.c_str());
  fd_ = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 || listen(fd_, 16) != 0) {
    std::string err = std::strerror(errno);
    close(fd_);
    fd_ = -1;
    return make_error("status socket " + path_ + ": " + err);
  }
  chmod(path_.c_str(), 0660);
  loop_.add(fd_, EPOLLIN, [this](uint32_t) {
    for (;;) {
      int c = accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) return;
      serve(c);
    }
  });
  return Ok{};
}

void StatusServer::serve(int fd) {
  // Requests are tiny and local: serve them inline, with timeouts so that a stuck client cannot stall
  // the datapath for long.
  timeval tv{1, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  std::string line;
  char ch = 0;
  while (line.size() < 256 && read(fd, &ch, 1) == 1 && ch != '\n')
    line += ch;
  std::string reply;
  try {
    reply = handler_(line).dump() + "\n";
  } catch (const std::exception& e) {
    reply = nlohmann::json{{"error", e.what()}}.dump() + "\n";
  }
  size_t off = 0;
  while (off < reply.size()) {
    ssize_t n = write(fd, reply.data() + off, reply.size() - off);
    if (n <= 0) break;
    off += static_cast<size_t>(n);
  }
  close(fd);
}

void StatusServer::stop() {
  if (fd_ < 0) return;
  loop_.remove(fd_);
  close(fd_);
  fd_ = -1;
  unlink(path_.c_str());
}

}  // namespace baton
