#include "daemon/kernel_settings.hpp"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <fstream>

namespace baton {

namespace {
std::optional<std::string> read_sysctl(const std::string& key) {
  std::ifstream in("/proc/sys/" + key);
  std::string v;
  if (!(in >> v)) return std::nullopt;
  return v;
}

bool write_sysctl(const std::string& key, const std::string& value) {
  std::ofstream out("/proc/sys/" + key);
  out << value << "\n";
  out.close();
  return read_sysctl(key) == value;
}
}  // namespace

std::optional<std::string> interface_of(uint32_t addr) {
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return std::nullopt;
  std::optional<std::string> found;
  for (ifaddrs* i = list; i; i = i->ifa_next) {
    if (i->ifa_addr && i->ifa_addr->sa_family == AF_INET &&
        ntohl(reinterpret_cast<sockaddr_in*>(i->ifa_addr)->sin_addr.s_addr) == addr) {
      found = i->ifa_name;
      break;
    }
  }
  freeifaddrs(list);
  return found;
}

std::vector<SysctlRequirement> KernelSettings::requirements(const std::string& iface) {
  return {
      {"net/ipv4/ip_forward",
       "1",
       "the front end forwards a handed-off client's packets to the back end",
       {"1"}},
      {"net/ipv4/conf/all/send_redirects",
       "0",
       "forwarded packets leave by the interface they came in on; an ICMP redirect would tell the client to "
       "bypass the front end",
       {"0"}},
      {"net/ipv4/conf/" + iface + "/send_redirects", "0", "as above, for the service interface", {"0"}},
      {"net/ipv4/conf/all/rp_filter",
       "2",
       "strict reverse-path filtering drops a client's packets that reach a node by an unexpected "
       "interface; loose mode is what the kernel documents for asymmetric routing",
       {"0", "2"}},
      {"net/ipv4/conf/" + iface + "/rp_filter", "2", "as above, for the service interface", {"0", "2"}},
      {"net/ipv4/tcp_fwmark_accept",
       "1",
       "a replayed connection inherits the replayed SYN's mark, which is how the back end finds its replies",
       {"1"}},
      {"net/ipv4/fwmark_reflect",
       "1",
       "resets the stack sends in answer to a replayed SYN carry its mark too",
       {"1"}},
  };
}

Status KernelSettings::apply(const std::string& iface, bool manage) {
  std::string problems;
  for (const auto& r : requirements(iface)) {
    auto cur = read_sysctl(r.key);
    if (!cur) {
      problems += "\n  " + r.key + ": cannot read (" + r.why + ")";
      continue;
    }
    if (std::find(r.acceptable.begin(), r.acceptable.end(), *cur) != r.acceptable.end()) continue;
    if (!manage) {
      problems += "\n  " + r.key + " is " + *cur + ", must be " + r.wanted + ": " + r.why;
      continue;
    }
    if (!write_sysctl(r.key, r.wanted)) {
      problems += "\n  " + r.key + " is " + *cur + " and cannot be set to " + r.wanted + ": " + r.why;
      continue;
    }
    spdlog::info("kernel: set {} = {} (was {})", r.key, r.wanted, *cur);
    changes_.push_back({r.key, *cur});
  }
  if (!problems.empty()) {
    restore();
    return make_error("this node's kernel settings do not allow handoff:" + problems +
                      (manage ? "" : "\n  (set them, or set manage_sysctls = true to let batond do it)"));
  }
  return Ok{};
}

void KernelSettings::restore() {
  for (auto it = changes_.rbegin(); it != changes_.rend(); ++it)
    write_sysctl(it->key, it->old_value);
  changes_.clear();
}

}  // namespace baton
