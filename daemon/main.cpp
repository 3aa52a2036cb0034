// batond: the Baton node daemon. Parses arguments and wires the parts together; the logic lives in
// core/ and in the daemon's libraries.
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstdlib>
#include <iostream>

#include "daemon/config.hpp"
#include "daemon/event_loop.hpp"
#include "daemon/kernel_settings.hpp"
#include "daemon/metrics.hpp"
#include "daemon/metrics_server.hpp"
#include "daemon/status_server.hpp"
#include "daemon/worker.hpp"
#include "daemon/worker_status.hpp"

namespace {

int run(baton::Config& cfg, const std::string& config_path) {
  using namespace baton;
  const NodeConfig& self = cfg.self();
  auto iface = interface_of(self.service_addr);
  if (!iface) {
    spdlog::error("service address {} is not configured on any interface of this node",
                  format_ipv4(self.service_addr));
    return 1;
  }
  KernelSettings kernel;
  if (auto s = kernel.apply(*iface, cfg.manage_sysctls); !s) {
    spdlog::error("{}", s.error());
    return 1;
  }

  // Signals are taken by the main thread's loop: blocked before any worker thread starts (they
  // inherit the mask).
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGINT);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGHUP);
  sigprocmask(SIG_BLOCK, &mask, nullptr);

  std::vector<std::unique_ptr<Worker>> workers;
  std::shared_ptr<BpfShared> bpf_shared;
  auto load = std::make_shared<LoadGauge>();
  for (uint32_t i = 0; i < cfg.workers; ++i)
    workers.push_back(std::make_unique<Worker>(cfg, i, *iface, bpf_shared, load));
  // Each of the workers' engines, asked on its own thread.
  auto each = [&](auto fn) {
    std::vector<std::invoke_result_t<decltype(fn)&, Worker&>> out;
    out.reserve(workers.size());
    for (auto& w : workers)
      out.push_back(w->call([&] { return fn(*w); }));
    return out;
  };
  auto status_now = [&] { return merge_worker_status(each([](Worker& w) { return w.engine().status(); })); };
  EventLoop loop;
  bool keep_flows = false;
  // A reload (SIGHUP, `batonctl reload`): the file read and checked as at start; what may change is
  // replaced in place in every worker (each reads its own copy), and told to the parts that keep copies.
  auto reload = [&]() -> nlohmann::json {
    auto next = load_config(config_path);
    if (!next) {
      spdlog::error("reload refused, the running configuration stays: {}", next.error());
      return {{"error", next.error()}};
    }
    if (std::string why = reload_refusal(cfg, *next); !why.empty()) {
      spdlog::error("reload refused, the running configuration stays: {}: {}", config_path, why);
      return {{"error", config_path + ": " + why}};
    }
    DatapathUpdate u;
    for (const auto& n : next->nodes) {
      if (n.id != next->node_id) u.peer_service_addrs.push_back(n.service_addr);
    }
    u.content = &next->content;
    u.kernel_triage = next->kernel_triage;
    // The first worker holds what the kernel has (rules, maps): if it refuses, nothing changed.
    for (auto& w : workers) {
      auto s = w->call([&]() -> Status {
        if (auto s = w->datapath().update(u); !s) return s;
        w->config() = *next;
        w->engine().reconfigure();
        w->mesh().reconfigure();
        return Ok{};
      });
      if (!s) {
        spdlog::error("reload refused, the running configuration stays: {}", s.error());
        return {{"error", s.error()}};
      }
    }
    cfg = std::move(*next);
    spdlog::info("reloaded {}: {} nodes, {} content rules", config_path, cfg.nodes.size(),
                 cfg.content.rules().size());
    return {{"reloaded", config_path}, {"nodes", cfg.nodes.size()}, {"rules", cfg.content.rules().size()}};
  };
  StatusServer status(loop, cfg.status_socket, [&](const std::string& cmd) -> nlohmann::json {
    if (cmd == "shutdown" || cmd == "shutdown keep-flows") {
      // keep-flows: for a restart or an upgrade; offloaded flows go on in the kernel and the next
      // batond adopts them.
      keep_flows = cmd == "shutdown keep-flows";
      spdlog::info("shutdown requested{}", keep_flows ? ", keeping offloaded flows" : "");
      loop.stop();
      return {{"stopping", true}, {"keep_flows", keep_flows}};
    }
    if (cmd.starts_with("drain ") || cmd.starts_with("undrain ")) {
      const bool on = cmd.starts_with("drain ");
      const std::string arg = cmd.substr(cmd.find(' ') + 1);
      char* end = nullptr;
      const unsigned long node = std::strtoul(arg.c_str(), &end, 10);
      if (arg.empty() || *end || node == 0 || node > 65535)
        return {{"error", "'" + arg + "' is not a node id"}};
      // Every worker's control connection carries it to the same worker of the node.
      for (const Status& s :
           each([&](Worker& w) { return w.mesh().request_drain(static_cast<NodeId>(node), on); }))
        if (!s) return {{"error", s.error()}};
      return {{"node", node}, {"draining", on}};
    }
    if (cmd == "reload") return reload();
    if (cmd == "status") return status_now();
    if (cmd == "flows") return merge_worker_flows(each([](Worker& w) { return w.engine().flows(); }));
    // The kernel's programs and maps are the node's: the first worker reports them.
    auto datapath_status = [&] {
      return workers.front()->call([&]() -> nlohmann::json {
        Datapath& d = workers.front()->datapath();
        return {{"datapath", d.name()}, {"stats", d.stats()}};
      });
    };
    if (cmd == "datapath status") return datapath_status();
    if (cmd == "datapath attach" || cmd == "datapath detach") {
      // The first worker switches the kernel; every other one prepares before and follows after.
      const bool attach = cmd == "datapath attach";
      for (size_t i = 1; i < workers.size(); ++i)
        workers[i]->call([&] { workers[i]->datapath().prepare_switch(attach); });
      const Status s =
          workers.front()->call([&] { return workers.front()->engine().switch_datapath(attach); });
      if (!s) return {{"error", s.error()}};
      for (size_t i = 1; i < workers.size(); ++i)
        workers[i]->call([&] { workers[i]->engine().follow_switch(attach); });
      return datapath_status();
    }
    return {
        {"error", "unknown command '" + cmd +
                      "' (try: status, flows, datapath status|attach|detach, drain|undrain NODE, reload)"}};
  });

  MetricsServer metrics(loop, cfg.metrics_addr, cfg.metrics_port, [&] { return metrics_text(status_now()); });

  int sfd = signalfd(-1, &mask, SFD_CLOEXEC);
  loop.add(sfd, EPOLLIN, [&](uint32_t) {
    signalfd_siginfo si{};
    if (read(sfd, &si, sizeof(si)) <= 0) return;
    if (si.ssi_signo == SIGHUP) {
      spdlog::info("SIGHUP: reloading {}", config_path);
      reload();
      return;
    }
    spdlog::info("signal {}: stopping", si.ssi_signo);
    loop.stop();
  });

  int rc = 0;
  if (auto s = status.start(); !s) {
    spdlog::error("{}", s.error());
    rc = 1;
  } else if (auto sm = cfg.metrics_port ? metrics.start() : Status(Ok{}); !sm) {
    spdlog::error("{}", sm.error());
    rc = 1;
  } else {
    for (auto& w : workers) {
      if (auto sw = w->start(); !sw) {
        spdlog::error("{}", sw.error());
        rc = 1;
        break;
      }
    }
  }
  if (rc == 0) {
    for (auto& w : workers)
      w->run();
    spdlog::info("batond node {} serving {}:{} with the {} datapath{}", cfg.node_id,
                 format_ipv4(self.service_addr), cfg.service_port, workers.front()->datapath().name(),
                 cfg.workers > 1 ? fmt::format(", {} workers", cfg.workers) : std::string());
    loop.run(20, [&](uint64_t now) { metrics.tick(now); });
  }
  // The first worker last: it holds the rules that send the others their packets.
  for (auto it = workers.rbegin(); it != workers.rend(); ++it)
    (*it)->stop(keep_flows);
  // keep_flows: the kernel keeps forwarding and translating, its settings stay for the next batond too.
  if (!keep_flows) kernel.restore();
  metrics.stop();
  status.stop();
  close(sfd);
  spdlog::info("batond stopped");
  return rc;
}

}  // namespace

int batond_main(int argc, char** argv) {
  CLI::App app{"batond: hands TCP connections off between the nodes of a web cluster"};
  std::string config_path = "/etc/baton/batond.toml";
  std::string log_level = "info";
  bool check_only = false;
  app.add_option("-c,--config", config_path, "configuration file (TOML)")->capture_default_str();
  app.add_option("-l,--log-level", log_level, "trace, debug, info, warn, error")->capture_default_str();
  app.add_flag("--check", check_only, "validate the configuration and exit");
  CLI11_PARSE(app, argc, argv);

  spdlog::set_level(spdlog::level::from_str(log_level));
  // Under systemd (its journal sets JOURNAL_STREAM) the journal stamps every line itself.
  spdlog::set_pattern(std::getenv("JOURNAL_STREAM") ? "%l %v" : "%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
  auto cfg = baton::load_config(config_path);
  if (!cfg) {
    std::cerr << "batond: " << cfg.error() << "\n";
    return 2;
  }
  if (check_only) {
    std::cout << "batond: " << config_path << " is valid (node " << cfg->node_id << ", " << cfg->nodes.size()
              << " nodes, " << cfg->content.rules().size() << " content rules)\n";
    return 0;
  }
  return run(*cfg, config_path);
}

int main(int argc, char** argv) {
  // Errors are reported where they happen; this only keeps an unexpected one (out of memory, say) from
  // ending the process without a word.
  try {
    return batond_main(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: %s\n", "batond", e.what());
    return 1;
  }
}
