// What the handoff state machines ask the outside world to do. The daemon's engine carries these out
// against a datapath (verdicts, injection) and the control channel (messages).
#pragma once

#include <cstdint>
#include <variant>
#include <vector>

#include "core/bytes.hpp"
#include "core/dispatch.hpp"
#include "core/protocol.hpp"

namespace baton {

// Identifies a packet the datapath holds until it gets a verdict (an NFQUEUE packet id, say).
using PacketId = uint64_t;

// Let the held packet continue (optionally with new bytes), or discard it.
struct Verdict {
  enum Kind : uint8_t { kAccept, kDrop };
  PacketId id = 0;
  Kind kind = kAccept;
  Bytes replacement;  // empty: unchanged
  bool operator==(const Verdict&) const = default;
};

// Deliver a packet into this node's own TCP stack, as if it had arrived from the network.
struct InjectLocal {
  Bytes packet;
  bool operator==(const InjectLocal&) const = default;
};

struct SendMessage {
  NodeId to = 0;
  proto::Message message;
};

using Action = std::variant<Verdict, InjectLocal, SendMessage>;
using Actions = std::vector<Action>;

inline Verdict accept(PacketId id) {
  return {id, Verdict::kAccept, {}};
}
inline Verdict accept_modified(PacketId id, Bytes b) {
  return {id, Verdict::kAccept, std::move(b)};
}
inline Verdict drop(PacketId id) {
  return {id, Verdict::kDrop, {}};
}

}  // namespace baton
