// batond's own answer to a held connection (a request no node can serve): where the connection stands,
// for a socket restored there, and the response it gets.
#pragma once

#include <string>

#include "core/actions.hpp"

namespace baton {

struct FeFlow;

// The connection as the local stack half-opened it (our SYN/ACK sent, nothing else), its request received.
RepairedConnection repaired_connection(const FeFlow& f);

// "503 Service Unavailable", closing the connection; `head`: a HEAD request, answered without the body.
std::string unavailable_response(bool head);

}  // namespace baton
