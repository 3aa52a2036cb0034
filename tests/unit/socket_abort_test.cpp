// abort_tcp_socket (and probe_tcp_socket) against the real kernel, in a network namespace of the test's own
// (loopback only): the peer gets a reset, a second abort finds nothing, and a listener is never taken down.
#include "daemon/socket_abort.hpp"
#include "daemon/socket_probe.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <thread>

namespace baton {
namespace {

struct Fd {
  int fd;
  explicit Fd(int f) : fd(f) {}
  ~Fd() {
    if (fd >= 0) close(fd);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
};

// A network namespace belongs to a thread: run the body on one that has unshared its own, so nothing
// leaves it and the process's namespace stays as it was.
void in_private_netns(const std::function<void()>& body) {
  bool entered = false;
  std::thread t([&] {
    if (unshare(CLONE_NEWNET) != 0) return;
    Fd s(socket(AF_INET, SOCK_DGRAM, 0));
    ifreq ifr{};
    std::strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
    if (ioctl(s.fd, SIOCGIFFLAGS, &ifr) != 0) return;
    ifr.ifr_flags |= IFF_UP;
    if (ioctl(s.fd, SIOCSIFFLAGS, &ifr) != 0) return;
    entered = true;
    body();
  });
  t.join();
  EXPECT_TRUE(entered) << "could not enter a private network namespace";
}

// Waits (up to 2 s) until this thread's namespace holds a TIME_WAIT socket on local port `port`: the state
// the test needs, polled rather than slept for. /proc/thread-self: the namespace is this thread's own.
bool time_wait_on(uint16_t port) {
  for (int i = 0; i < 200; ++i) {
    std::ifstream table("/proc/thread-self/net/tcp");
    std::string line;
    std::getline(table, line);  // the header
    while (std::getline(table, line)) {
      std::istringstream fields(line);
      std::string slot, local, remote, state;
      fields >> slot >> local >> remote >> state;
      const auto colon = local.find(':');
      if (state == "06" && colon != std::string::npos &&
          std::stoul(local.substr(colon + 1), nullptr, 16) == port)
        return true;
    }
    usleep(10'000);
  }
  return false;
}

sockaddr_in loopback(uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  return a;
}

uint16_t local_port(int fd) {
  sockaddr_in a{};
  socklen_t len = sizeof(a);
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  return ntohs(a.sin_port);
}

int connect_to(uint16_t port) {
  int c = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in to = loopback(port);
  if (connect(c, reinterpret_cast<sockaddr*>(&to), sizeof(to)) != 0) {
    close(c);
    return -1;
  }
  return c;
}

// A listener on 127.0.0.1 (any port); with defer_accept_s, TCP_DEFER_ACCEPT. -1 on failure.
int listen_on_loopback(int defer_accept_s = 0) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in any = loopback(0);
  bool ok = fd >= 0 && bind(fd, reinterpret_cast<sockaddr*>(&any), sizeof(any)) == 0;
  if (ok && defer_accept_s)
    ok = setsockopt(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &defer_accept_s, sizeof(defer_accept_s)) == 0;
  if (ok) ok = listen(fd, 8) == 0;
  if (!ok && fd >= 0) {
    close(fd);
    fd = -1;
  }
  return fd;
}

// A listener on loopback and one connection to it, both ends open.
struct LoopbackConnection {
  Fd listener{listen_on_loopback()};
  uint16_t port = listener.fd >= 0 ? local_port(listener.fd) : 0;
  Fd client{listener.fd >= 0 ? connect_to(port) : -1};
  Fd server{client.fd >= 0 ? ::accept(listener.fd, nullptr, nullptr) : -1};
  bool ok() const { return server.fd >= 0; }
  // Named as the datapath names flows: client -> this node.
  FlowKey key() const { return {INADDR_LOOPBACK, INADDR_LOOPBACK, local_port(client.fd), port}; }
};

TEST(SocketAbort, ResetsThePeerAndSparesTheListener) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root for a network namespace";
  in_private_netns([] {
    LoopbackConnection c;
    ASSERT_TRUE(c.ok());
    const uint32_t lo = INADDR_LOOPBACK;
    const uint16_t port = c.port;
    const FlowKey key = c.key();
    const Fd& client = c.client;
    const Fd& server = c.server;
    auto spared = abort_tcp_socket(key, SocketScope::kTimeWait);
    ASSERT_TRUE(spared) << spared.error();
    EXPECT_EQ(*spared, SocketAbort::kKept) << "a live connection is not a TIME_WAIT";
    ASSERT_EQ(send(server.fd, "x", 1, 0), 1);
    char got;
    ASSERT_EQ(recv(client.fd, &got, 1, 0), 1) << "the connection was hurt";

    auto r = abort_tcp_socket(key, SocketScope::kConnection);
    ASSERT_TRUE(r) << r.error();
    EXPECT_EQ(*r, SocketAbort::kAborted);
    pollfd p{client.fd, POLLIN, 0};
    ASSERT_EQ(poll(&p, 1, 2000), 1) << "the client heard nothing";
    char b;
    EXPECT_EQ(recv(client.fd, &b, 1, 0), -1);
    EXPECT_EQ(errno, ECONNRESET);

    auto again = abort_tcp_socket(key, SocketScope::kConnection);
    ASSERT_TRUE(again) << again.error();
    EXPECT_EQ(*again, SocketAbort::kNoSocket);

    // No connection from this port: the kernel's lookup would find the listener; it must stay.
    auto none = abort_tcp_socket(FlowKey{lo, lo, 1, port}, SocketScope::kConnection);
    ASSERT_TRUE(none) << none.error();
    EXPECT_EQ(*none, SocketAbort::kNoSocket);
    Fd another(connect_to(port));
    EXPECT_GE(another.fd, 0) << "the listener was taken down";
  });
}

// What a back end reads before it lets a flow move: everything it sent acknowledged, and the byte counts
// that say where the connection stands.
TEST(SocketProbe, ReadsWhatTheSocketSentAndGotAcknowledged) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root for a network namespace";
  in_private_netns([] {
    LoopbackConnection c;
    ASSERT_TRUE(c.ok());
    const uint32_t lo = INADDR_LOOPBACK;
    const uint16_t port = c.port;
    const FlowKey key = c.key();
    const Fd& client = c.client;
    const Fd& server = c.server;
    ASSERT_EQ(send(client.fd, std::string(24, 'q').data(), 24, 0), 24);
    SocketProbe unread;
    for (int i = 0; i < 200 && unread.unread == 0; ++i) {  // on its way over loopback: poll for it
      auto r = probe_tcp_socket(key);
      ASSERT_TRUE(r) << r.error();
      unread = *r;
      if (unread.unread == 0) usleep(10'000);
    }
    EXPECT_EQ(unread.unread, 24u) << "the request waits for the server to read it";
    char buf[2000];
    ASSERT_EQ(recv(server.fd, buf, 24, MSG_WAITALL), 24);
    ASSERT_EQ(send(server.fd, std::string(1000, 'r').data(), 1000, 0), 1000);
    ASSERT_EQ(recv(client.fd, buf, 1000, MSG_WAITALL), 1000);
    SocketProbe p;
    for (int i = 0; i < 200; ++i) {  // the client's ACK is on its way: poll for it, do not sleep
      auto r = probe_tcp_socket(key);
      ASSERT_TRUE(r) << r.error();
      p = *r;
      if (p.unacked == 0) break;
      usleep(10'000);
    }
    EXPECT_TRUE(p.found);
    EXPECT_TRUE(p.established);
    EXPECT_EQ(p.unacked, 0u);
    EXPECT_EQ(p.notsent, 0u);
    EXPECT_EQ(p.bytes_acked, 1000u);
    EXPECT_EQ(p.bytes_received, 24u);
    EXPECT_EQ(p.unread, 0u);
    EXPECT_LE(p.since_sent_ms, p.since_received_ms) << "answered after the request came";
    // The client closes its side: not established any more (CLOSE_WAIT).
    shutdown(client.fd, SHUT_WR);
    ASSERT_EQ(recv(server.fd, buf, 1, 0), 0);
    auto closing = probe_tcp_socket(key);
    ASSERT_TRUE(closing) << closing.error();
    EXPECT_TRUE(closing->found);
    EXPECT_FALSE(closing->established);
    // No connection on the tuple (only the listener matches the port): nothing found.
    auto none = probe_tcp_socket(FlowKey{lo, lo, 1, port});
    ASSERT_TRUE(none) << none.error();
    EXPECT_FALSE(none->found);
  });
}

TEST(SocketAbort, RemovesATimeWaitOnlyWhenAskedTo) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root for a network namespace";
  in_private_netns([] {
    Fd listener(listen_on_loopback());
    ASSERT_GE(listener.fd, 0);
    const uint16_t port = local_port(listener.fd);
    int c = connect_to(port);
    ASSERT_GE(c, 0);
    const uint16_t cport = local_port(c);
    int s = ::accept(listener.fd, nullptr, nullptr);
    ASSERT_GE(s, 0);
    // The server closes first, so its side ends in TIME_WAIT.
    close(s);
    char b;
    ASSERT_EQ(recv(c, &b, 1, 0), 0);
    close(c);
    ASSERT_TRUE(time_wait_on(port)) << "the server's side never reached TIME_WAIT";

    const uint32_t lo = INADDR_LOOPBACK;
    FlowKey key{lo, lo, cport, port};
    auto kept = abort_tcp_socket(key, SocketScope::kConnection);
    ASSERT_TRUE(kept) << kept.error();
    EXPECT_EQ(*kept, SocketAbort::kKept) << "a TIME_WAIT is not a connection to reset";
    auto cleared = abort_tcp_socket(key, SocketScope::kTimeWait);
    ASSERT_TRUE(cleared) << cleared.error();
    EXPECT_EQ(*cleared, SocketAbort::kAborted);
    auto gone = abort_tcp_socket(key, SocketScope::kTimeWait);
    ASSERT_TRUE(gone) << gone.error();
    EXPECT_EQ(*gone, SocketAbort::kNoSocket);
  });
}

TEST(SocketAbort, AHandshakeInProgressIsLeftToFinish) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root for a network namespace";
  in_private_netns([] {
    // Deferred accept keeps the server side a request socket (SYN_RECV) until data comes.
    Fd listener(listen_on_loopback(5));
    ASSERT_GE(listener.fd, 0);
    const uint16_t port = local_port(listener.fd);
    Fd client(connect_to(port));
    ASSERT_GE(client.fd, 0);
    const uint32_t lo = INADDR_LOOPBACK;
    auto r = abort_tcp_socket(FlowKey{lo, lo, local_port(client.fd), port}, SocketScope::kTimeWait);
    ASSERT_TRUE(r) << r.error();
    EXPECT_EQ(*r, SocketAbort::kNoSocket)
        << "a handshake in progress is neither a TIME_WAIT nor a live connection";
    ASSERT_EQ(send(client.fd, "x", 1, 0), 1);
    Fd server(::accept(listener.fd, nullptr, nullptr));
    EXPECT_GE(server.fd, 0) << "the handshake was hurt";
  });
}

}  // namespace
}  // namespace baton
