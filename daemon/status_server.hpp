// The unix socket batonctl talks to: one command line in ("status", "flows"), one JSON document out.
#pragma once

#include <functional>
#include <nlohmann/json.hpp>
#include <string>

#include "daemon/datapath.hpp"
#include "daemon/event_loop.hpp"

namespace baton {

class StatusServer {
 public:
  using Handler = std::function<nlohmann::json(const std::string& command)>;
  StatusServer(EventLoop& loop, std::string path, Handler handler)
      : loop_(loop), path_(std::move(path)), handler_(std::move(handler)) {}
  ~StatusServer() { stop(); }
  StatusServer(const StatusServer&) = delete;
  StatusServer& operator=(const StatusServer&) = delete;

  Status start();
  void stop();

 private:
  void serve(int fd);
  EventLoop& loop_;
  std::string path_;
  Handler handler_;
  int fd_ = -1;
};

}  // namespace baton
