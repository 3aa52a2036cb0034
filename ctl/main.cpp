// batonctl: asks a running batond what it holds, over its unix socket.
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <nlohmann/json.hpp>
#include <thread>

#include "ctl/top.hpp"

namespace {

// Exit codes (docs/operations.md, "batonctl"): what a script can tell apart.
constexpr int kOk = 0;
constexpr int kRefused = 1;      // batond answered with an error (a refused reload, an unknown node...)
constexpr int kUsage = 2;        // the command line is wrong
constexpr int kUnreachable = 3;  // no batond answers on the socket, or its answer does not parse

int query(const std::string& socket_path, const std::string& command, nlohmann::json* out) {
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::strncpy(a.sun_path, socket_path.c_str(), sizeof(a.sun_path) - 1);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
    std::cerr << "batonctl: cannot reach batond at " << socket_path << ": " << std::strerror(errno) << "\n";
    close(fd);
    return kUnreachable;
  }
  std::string line = command + "\n";
  if (write(fd, line.data(), line.size()) != static_cast<ssize_t>(line.size())) {
    close(fd);
    return kUnreachable;
  }
  std::string reply;
  char buf[65536];
  ssize_t n = 0;
  while ((n = read(fd, buf, sizeof(buf))) > 0)
    reply.append(buf, static_cast<size_t>(n));
  close(fd);
  try {
    *out = nlohmann::json::parse(reply);
  } catch (const std::exception& e) {
    std::cerr << "batonctl: bad reply from batond: " << e.what() << "\n";
    return kUnreachable;
  }
  if (out->is_object() && out->contains("error")) {
    std::cerr << "batonctl: " << (*out)["error"].get<std::string>() << "\n";
    return kRefused;
  }
  return kOk;
}

// Every node of the cluster as this one sees it: itself, then each peer.
nlohmann::json nodes_of(const nlohmann::json& s) {
  nlohmann::json out = nlohmann::json::array();
  out.push_back({{"id", s["node_id"]},
                 {"self", true},
                 {"state", "self"},
                 {"load", s["load"]},
                 {"rtt_us", nullptr},
                 {"draining", s.value("draining", false)},
                 {"last_error", ""}});
  for (const auto& p : s["control"]["peers"]) {
    const bool up = p.value("connected", false);
    // Stalled: connected, but its kernel acknowledges nothing (timeouts.peer_stall_ms).
    const char* state = up ? (p.value("stalled", false) ? "stalled" : "up")
                           : (p.value("retired", false) ? "retired" : "down");
    out.push_back({{"id", p["id"]},
                   {"self", false},
                   {"state", state},
                   {"load", p["load"]},
                   {"rtt_us", up ? p.value("rtt_us", nlohmann::json(nullptr)) : nlohmann::json(nullptr)},
                   {"draining", p.value("draining", false)},
                   {"last_error", p.value("last_error", "")}});
  }
  return out;
}

void print_nodes(const nlohmann::json& nodes) {
  std::printf("%-5s %-8s %-6s %-9s %-9s %s\n", "NODE", "STATE", "LOAD", "RTT_MS", "DRAINING", "LAST_ERROR");
  for (const auto& n : nodes) {
    const std::string rtt = n["rtt_us"].is_number()
                                ? std::to_string(n["rtt_us"].get<uint64_t>() / 1000) + "." +
                                      std::to_string(n["rtt_us"].get<uint64_t>() % 1000 / 100)
                                : "-";
    std::printf("%-5s %-8s %-6s %-9s %-9s %s\n", n["id"].dump().c_str(),
                n["state"].get<std::string>().c_str(), n["load"].dump().c_str(), rtt.c_str(),
                n["draining"].get<bool>() ? "yes" : "no", n["last_error"].get<std::string>().c_str());
  }
}

void print_status(const nlohmann::json& s) {
  std::cout << "node " << s["node_id"] << " serving " << s["service"].get<std::string>() << " (datapath "
            << s["datapath"].get<std::string>() << ", up " << s["uptime_ms"].get<uint64_t>() / 1000
            << " s)\n";
  std::cout << "live flows: " << s["live_flows"] << " (front end " << s["frontend"]["live_flows"]
            << ", back end " << s["backend"]["live_flows"] << ")\n";
  std::cout << "front end:";
  for (const auto& [k, v] : s["frontend"].items())
    std::cout << " " << k << "=" << v;
  std::cout << "\nback end:";
  for (const auto& [k, v] : s["backend"].items())
    std::cout << " " << k << "=" << v;
  std::cout << "\npeers:\n";
  for (const auto& p : s["control"]["peers"]) {
    std::cout << "  node " << p["id"] << ": " << (p["connected"].get<bool>() ? "connected" : "down")
              << ", load " << p["load"] << (p.value("draining", false) ? ", draining" : "");
    if (!p["last_error"].get<std::string>().empty())
      std::cout << ", last error: " << p["last_error"].get<std::string>();
    std::cout << "\n";
  }
}

void print_flows(const nlohmann::json& flows) {
  // PEER: the node serving a front-end flow now (MOVES: how often it moved between nodes), or the front
  // end of a back-end flow.
  std::printf("%-9s %-22s %-22s %-16s %-6s %-5s %s\n", "ROLE", "CLIENT", "SERVICE", "STATE", "PEER", "MOVES",
              "PATH");
  for (const auto& f : flows) {
    bool fe = f["role"] == "frontend";
    std::printf("%-9s %-22s %-22s %-16s %-6s %-5s %s\n", f["role"].get<std::string>().c_str(),
                f["client"].get<std::string>().c_str(), f["service"].get<std::string>().c_str(),
                f["state"].get<std::string>().c_str(),
                std::to_string(fe ? f["backend"].get<int>() : f["frontend"].get<int>()).c_str(),
                fe ? std::to_string(f.value("moves", 0)).c_str() : "",
                fe ? f["path"].get<std::string>().c_str() : "");
  }
}

// Rows every `interval` seconds until `count` rows (0: until interrupted) or batond goes away.
int run_top(const std::string& socket_path, double interval, unsigned count, bool json) {
  nlohmann::json before;
  if (int rc = query(socket_path, "status", &before)) return rc;
  auto taken = std::chrono::steady_clock::now();
  if (!json) baton::ctl::print_top_header();
  for (unsigned rows = 0; count == 0 || rows < count; ++rows) {
    std::this_thread::sleep_until(taken + std::chrono::duration<double>(interval));
    nlohmann::json now;
    if (int rc = query(socket_path, "status", &now)) return rc;
    const auto at = std::chrono::steady_clock::now();
    const nlohmann::json row =
        baton::ctl::top_row(before, now, std::chrono::duration<double>(at - taken).count());
    if (json) {
      std::cout << row.dump() << std::endl;
    } else {
      if (rows > 0 && rows % 20 == 0) baton::ctl::print_top_header();
      baton::ctl::print_top_row(row);
    }
    before = std::move(now);
    taken = at;
  }
  return kOk;
}

}  // namespace

int batonctl_main(int argc, char** argv) {
  CLI::App app{"batonctl: inspect a running batond"};
  std::string socket_path = "/run/baton/batond.sock";
  bool json = false;
  app.add_option("-s,--socket", socket_path, "batond's status socket")->capture_default_str();
  app.add_flag("--json", json, "print the raw JSON");
  app.require_subcommand(1);
  auto* status = app.add_subcommand("status", "node summary: flows, counters, peers");
  auto* flows = app.add_subcommand("flows", "live flows with their state");
  auto* nodes =
      app.add_subcommand("nodes", "every node of the cluster as this one sees it: state, load, RTT, drain");
  auto* datapath =
      app.add_subcommand("datapath", "the kernel datapath: status, attach or detach its programs");
  std::string datapath_action = "status";
  datapath->add_option("action", datapath_action, "status | attach | detach")
      ->check(CLI::IsMember({"status", "attach", "detach"}));
  auto* stop = app.add_subcommand("shutdown", "stop batond (cleanly: rules, programs, pins and settings go)");
  bool keep_flows = false;
  stop->add_flag("--keep-flows", keep_flows,
                 "leave handed-off flows running in the kernel datapath for the next batond to adopt");
  auto* drain = app.add_subcommand(
      "drain", "NODE (any node of the cluster, asked at any node) takes no new handoffs; live flows finish");
  auto* undrain = app.add_subcommand("undrain", "NODE takes new handoffs again");
  auto* reload = app.add_subcommand(
      "reload", "re-read batond's config file: content map, policies, nodes, timeouts; live flows stay");
  auto* top = app.add_subcommand(
      "top",
      "a row per interval: handoffs, local and refused requests per second, p99 handoff latency, flows");
  double interval = 1.0;
  unsigned count = 0;
  top->add_option("-i,--interval", interval, "seconds between rows")
      ->capture_default_str()
      ->check(CLI::Range(0.1, 3600.0));
  top->add_option("-n,--count", count, "rows to print, then exit (0: until interrupted)")
      ->capture_default_str();
  unsigned drain_node = 0;
  drain->add_option("node", drain_node, "node id")->required();
  undrain->add_option("node", drain_node, "node id")->required();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? kOk : kUsage;  // --help is a success
  }

  if (top->parsed()) return run_top(socket_path, interval, count, json);
  nlohmann::json reply;
  std::string command = "datapath " + datapath_action;
  if (status->parsed() || nodes->parsed()) command = "status";
  if (flows->parsed()) command = "flows";
  if (stop->parsed()) command = keep_flows ? "shutdown keep-flows" : "shutdown";
  if (reload->parsed()) command = "reload";
  if (drain->parsed()) command = "drain " + std::to_string(drain_node);
  if (undrain->parsed()) command = "undrain " + std::to_string(drain_node);
  if (int rc = query(socket_path, command, &reply)) return rc;
  if (nodes->parsed() && json) {
    std::cout << nodes_of(reply).dump(2) << "\n";
  } else if (nodes->parsed()) {
    print_nodes(nodes_of(reply));
  } else if (json) {
    std::cout << reply.dump(2) << "\n";
  } else if (status->parsed()) {
    print_status(reply);
  } else if (flows->parsed()) {
    print_flows(reply);
  } else if (reload->parsed()) {
    std::cout << "reloaded " << reply["reloaded"].get<std::string>() << ": " << reply["nodes"] << " nodes, "
              << reply["rules"] << " content rules\n";
  } else if (drain->parsed() || undrain->parsed()) {
    std::cout << "node " << drain_node
              << (drain->parsed() ? " drains: no new handoffs while another node can serve them\n"
                                  : " takes new handoffs again\n");
  } else if (stop->parsed()) {
    std::cout << "batond is stopping" << (keep_flows ? ", leaving handed-off flows in the kernel" : "")
              << "\n";
  } else {
    std::cout << "datapath " << reply["datapath"].get<std::string>() << "\n"
              << reply["stats"].dump(2) << "\n";
  }
  return kOk;
}

int main(int argc, char** argv) {
  // Errors are reported where they happen; this only keeps an unexpected one (out of memory, say) from
  // ending the process without a word.
  try {
    return batonctl_main(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: %s\n", "batonctl", e.what());
    return kRefused;
  }
}
