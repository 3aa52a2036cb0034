// A TCP socket restored (TCP_REPAIR, as CRIU restores connections) where a connection stands that the local
// stack half-opened and batond held: batond writes its own answer on it and closes it; the kernel does the
// rest (retransmission, the FIN exchange, TIME_WAIT) as for any socket.
#pragma once

#include <string_view>

#include "core/actions.hpp"
#include "core/result.hpp"

namespace baton {

// The local stack must hold nothing on the 4-tuple any more (its request socket aborted first).
// Needs CAP_NET_ADMIN and CONFIG_CHECKPOINT_RESTORE.
Status answer_on_repaired_socket(const RepairedConnection& conn, std::string_view response);

}  // namespace baton
