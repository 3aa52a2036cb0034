// batonctl top: a live view of what a batond does, one row per interval (rates from the difference of
// two status answers), in the style of vmstat: readable as it scrolls, and easy to log or parse.
#pragma once

#include <nlohmann/json.hpp>

namespace baton::ctl {

// One row from two status answers taken `seconds` apart: request rates by outcome, the handoff latency
// that 99% of the interval's handoffs stayed under (a histogram bound, in ms; null with no handoff),
// live flows by role, peers up.
nlohmann::json top_row(const nlohmann::json& before, const nlohmann::json& now, double seconds);

void print_top_header();
void print_top_row(const nlohmann::json& row);

}  // namespace baton::ctl
