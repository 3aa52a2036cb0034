// The Prometheus endpoint (`metrics_listen`): GET /metrics answered with the text exposition format, on
// batond's own event loop. Connections are non-blocking and bounded in number, size and time, so that a
// slow or hostile scraper cannot stall the datapath.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>

#include "core/result.hpp"
#include "daemon/event_loop.hpp"

namespace baton {

class MetricsServer {
 public:
  using Body = std::function<std::string()>;  // the metrics, in the text format
  MetricsServer(EventLoop& loop, uint32_t addr, uint16_t port, Body body)
      : loop_(loop), addr_(addr), port_(port), body_(std::move(body)) {}
  ~MetricsServer() { stop(); }
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  Status start();
  void stop();
  // Closes connections that have not finished within their time.
  void tick(uint64_t now_ms);

  static constexpr size_t kMaxConnections = 64;
  static constexpr size_t kMaxRequestBytes = 8192;
  static constexpr uint64_t kTimeoutMs = 5000;

 private:
  struct Conn {
    std::string in;
    std::string out;
    size_t sent = 0;
    uint64_t deadline_ms = 0;
  };
  void accept_ready();
  void on_event(int fd, uint32_t events);
  // The response to a whole request head: 200 with the metrics, or an error status.
  std::string respond(const std::string& head);
  void close_conn(int fd);

  EventLoop& loop_;
  uint32_t addr_;
  uint16_t port_;
  Body body_;
  int fd_ = -1;
  std::map<int, Conn> conns_;
};

}  // namespace baton
