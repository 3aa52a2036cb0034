// batond's state as Prometheus metrics (text exposition format). They are read off the same document
// `batonctl status --json` shows, so that both always agree; docs/operations.md lists them.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace baton {

std::string metrics_text(const nlohmann::json& status);

}  // namespace baton
