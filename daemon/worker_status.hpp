// batond's status when several workers each report their own (Engine::status): one document, as a
// single engine's, plus a line per worker.
#pragma once

#include <nlohmann/json.hpp>
#include <vector>

namespace baton {

// Counters of the front and back end, live flows and unsent messages are summed (histogram counts
// element by element); what describes the node (its id, load, datapath) is the first worker's; a peer
// is connected only when every worker's connection to it is. Adds "workers" (how many) and, for more
// than one, "per_worker" (each worker's flows and handoffs).
nlohmann::json merge_worker_status(const std::vector<nlohmann::json>& workers);

// Every worker's flows in one list, each with its "worker".
nlohmann::json merge_worker_flows(const std::vector<nlohmann::json>& workers);

}  // namespace baton
