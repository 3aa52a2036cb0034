// This node's load (the connections its web server holds), measured by one worker and read by all.
// The measure is a sock_diag dump, which walks the kernel's whole established-socket hash (every bucket,
// every namespace's sockets, TIME_WAITs included): about 1.5% of this test machine's CPU at 30,000 new
// connections a second, once per heartbeat. The count is the node's, the same for every worker, so one
// worker measures it for all.
#pragma once

#include <atomic>
#include <cstdint>

namespace baton {

struct LoadGauge {
  std::atomic<uint32_t> load{0};
  std::atomic<uint64_t> measures{0};  // how many times it was measured: tells readers a new value came
};

}  // namespace baton
