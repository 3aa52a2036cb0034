// Runs an external command (iptables) without a shell, capturing its output.
#pragma once

#include <string>
#include <vector>

namespace baton {

struct CommandResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr together
};

// `input`, if any, is written to the command's standard input.
CommandResult run_command(const std::vector<std::string>& argv, const std::string& input = "");

}  // namespace baton
