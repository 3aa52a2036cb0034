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

#include "daemon/bpf_datapath.hpp"
#include "daemon/config.hpp"
#include "daemon/engine.hpp"
#include "daemon/event_loop.hpp"
#include "daemon/kernel_settings.hpp"
#include "daemon/metrics.hpp"
#include "daemon/metrics_server.hpp"
#include "daemon/nfqueue_datapath.hpp"
#include "daemon/peer_mesh.hpp"
#include "daemon/status_server.hpp"

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

  NfqueueOptions dp_opts;
  dp_opts.queue_num = cfg.queue_num;
  dp_opts.service_addr = self.service_addr;
  dp_opts.service_port = cfg.service_port;
  dp_opts.mark = cfg.packet_mark;
  for (const auto& n : cfg.nodes) {
    if (n.id != cfg.node_id) dp_opts.peer_service_addrs.push_back(n.service_addr);
  }
  std::unique_ptr<Datapath> datapath_ptr;
  if (cfg.datapath == "ebpf") {
    BpfDatapathOptions bo;
    bo.nfqueue = dp_opts;
    bo.interface = *iface;
    bo.pin_dir = cfg.bpf_pin_dir;
    bo.max_flows = static_cast<uint32_t>(cfg.max_flows);
    bo.triage = cfg.kernel_triage;
    bo.content = cfg.content;
    bo.self = cfg.node_id;
    bo.triage_timeout_ms = cfg.hold_timeout_ms;
    bo.watch_timeout_ms = cfg.idle_timeout_ms;
    datapath_ptr = std::make_unique<BpfDatapath>(bo);
  } else {
    datapath_ptr = std::make_unique<NfqueueDatapath>(dp_opts);
  }
  Datapath& datapath = *datapath_ptr;
  EventLoop loop;
  Engine engine(cfg, datapath);
  PeerMesh mesh(
      cfg, loop, [&](NodeId from, const proto::Message& m) { engine.on_message(from, m); },
      [&](NodeId n, bool up, const std::vector<FlowKey>& unreached) { engine.on_peer(n, up, unreached); },
      [&] { return engine.node_load(); });
  engine.attach(mesh);
  bool keep_flows = false;
  // A reload (SIGHUP, `batonctl reload`): the file read and checked as at start; what may change is
  // replaced in place (every part reads `cfg`), and told to the parts that keep copies.
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
    if (auto s = datapath.update(u); !s) {
      spdlog::error("reload refused, the running configuration stays: {}", s.error());
      return {{"error", s.error()}};
    }
    cfg = std::move(*next);
    engine.reconfigure();
    mesh.reconfigure();
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
      if (auto s = mesh.request_drain(static_cast<NodeId>(node), on); !s) return {{"error", s.error()}};
      return {{"node", node}, {"draining", on}};
    }
    if (cmd == "reload") return reload();
    if (cmd == "status") return engine.status();
    if (cmd == "flows") return engine.flows();
    if (cmd == "datapath status") return {{"datapath", datapath.name()}, {"stats", datapath.stats()}};
    if (cmd == "datapath attach" || cmd == "datapath detach") {
      auto s = engine.switch_datapath(cmd == "datapath attach");
      if (!s) return {{"error", s.error()}};
      return {{"datapath", datapath.name()}, {"stats", datapath.stats()}};
    }
    return {
        {"error", "unknown command '" + cmd +
                      "' (try: status, flows, datapath status|attach|detach, drain|undrain NODE, reload)"}};
  });

  MetricsServer metrics(loop, cfg.metrics_addr, cfg.metrics_port,
                        [&] { return metrics_text(engine.status()); });

  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGINT);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGHUP);
  sigprocmask(SIG_BLOCK, &mask, nullptr);
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
  } else if (auto s2 = mesh.start(); !s2) {
    spdlog::error("{}", s2.error());
    rc = 1;
  } else if (auto sm = cfg.metrics_port ? metrics.start() : Status(Ok{}); !sm) {
    spdlog::error("{}", sm.error());
    rc = 1;
  } else if (auto s3 = datapath.start([&](const DatapathPacket& p) { engine.on_packet(p); },
                                      [&](const DatapathEvent& e) { engine.on_datapath_event(e); });
             !s3) {
    spdlog::error("datapath {}: {}", datapath.name(), s3.error());
    rc = 1;
  } else {
    loop.add(datapath.fd(), EPOLLIN, [&](uint32_t) { datapath.poll(); });
    engine.adopt(datapath.adopted_flows());
    spdlog::info("batond node {} serving {}:{} with the {} datapath", cfg.node_id,
                 format_ipv4(self.service_addr), cfg.service_port, datapath.name());
    loop.run(20, [&](uint64_t now) {
      // The engine first: it counts this node's load at heartbeat time, which the mesh's heartbeats
      // then carry (not the count of the previous period).
      engine.tick(now);
      mesh.tick(now);
      metrics.tick(now);
    });
    loop.remove(datapath.fd());
  }
  if (keep_flows) {
    // The kernel keeps forwarding and translating: its settings stay for the next batond too.
    datapath.stop_keeping_flows();
  } else {
    datapath.stop();
    kernel.restore();
  }
  mesh.stop();
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
