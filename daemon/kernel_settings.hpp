// The kernel settings a node needs for handoff (docs/design.md, "Kernel settings"): checked at start,
// set where that is safe and allowed (manage_sysctls), restored at a clean stop.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "daemon/datapath.hpp"

namespace baton {

struct SysctlRequirement {
  std::string key;     // e.g. "net/ipv4/ip_forward"
  std::string wanted;  // value we need
  std::string why;
  // Accept any value in this list as already fine (rp_filter: 0 or 2).
  std::vector<std::string> acceptable;
};

class KernelSettings {
 public:
  // `iface` is the interface holding the service address.
  static std::vector<SysctlRequirement> requirements(const std::string& iface);
  Status apply(const std::string& iface, bool manage);
  void restore();

 private:
  struct Change {
    std::string key;
    std::string old_value;
  };
  std::vector<Change> changes_;
};

// Name of the interface that holds `addr` (host byte order), if any.
std::optional<std::string> interface_of(uint32_t addr);

}  // namespace baton
