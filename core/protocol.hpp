// The control protocol between batond instances: versioned, length-prefixed binary frames.
//
// Frame: u32 length of what follows | u8 version | u8 type | body. All integers big-endian; byte strings
// are u32 length + bytes. A decoder error means the peer is broken or hostile: close the connection.
//
// Compatibility (docs/operations.md, "Rolling upgrades"): within one version, a message may gain fields
// at its end and new message types may appear; an older decoder ignores trailing bytes and skips frames
// of types it does not know, so newer and older nodes keep talking. A field appended later must be read
// only when present (its absence means the older behaviour), and a new type must be one an older node
// may ignore. Anything else (a field changes meaning, a type an older node must act on) takes a new
// version, and nodes of different versions refuse each other's connections, naming both.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <variant>

#include "core/bytes.hpp"
#include "core/packet.hpp"
#include "core/result.hpp"

namespace baton::proto {

// 2: the first version with the compatibility rules above (version 1 decoders rejected trailing bytes
// and unknown types, and its HEARTBEAT had no draining flag).
inline constexpr uint8_t kVersion = 2;
inline constexpr size_t kMaxFrame = 1 << 20;  // held requests are capped far below this

enum class Type : uint8_t {
  kHello = 1,
  kAuth = 2,
  kHandoffRequest = 3,
  kHandoffAck = 4,
  kFlowClosed = 5,
  kHeartbeat = 6,
  kRestarted = 7,
  kQuiesce = 8,
  kQuiesced = 9,
  kDrain = 10,
};
inline constexpr Type kLastType = Type::kDrain;  // types above it are a newer version's additions

// First message each side sends: who it is and a fresh challenge for the other side.
struct Hello {
  uint32_t node_id = 0;
  std::array<uint8_t, 16> nonce{};
  // A batond with several workers runs one control connection per worker and peer: which one this is,
  // of how many (trailing fields: a HELLO without them is worker 0 of 1). Every node needs the same count.
  uint8_t workers = 1;
  uint8_t worker = 0;
  bool operator==(const Hello&) const = default;
};

// Proof of the shared secret: HMAC-SHA256 over both node ids and both nonces (see daemon/auth).
struct Auth {
  std::array<uint8_t, 32> mac{};
  bool operator==(const Auth&) const = default;
};

// Which options the front end granted the client in its SYN/ACK.
namespace granted {
inline constexpr uint8_t kTimestamps = 1;
inline constexpr uint8_t kSack = 2;
inline constexpr uint8_t kWindowScale = 4;
}  // namespace granted

struct HandoffRequest {
  FlowKey flow;  // client -> front end, as the client sees it
  uint32_t isn1 = 0;
  uint8_t granted_options = 0;
  uint8_t frontend_wscale = 0;
  uint16_t frontend_mss = 0;
  Bytes syn;      // the client's SYN, as received
  Bytes ack;      // the client's handshake-completing ACK, as received (payload removed)
  Bytes request;  // the held request bytes, starting at the client's ISN + 1
  bool operator==(const HandoffRequest&) const = default;
};

enum class Refusal : uint8_t {
  kNone = 0,
  kNoListener = 1,  // the back end's web server did not answer the replayed SYN
  kOverloaded = 2,  // the back end's flow table is full
  kBadRequest = 3,  // the request's packets did not parse
  kShuttingDown = 4,
  kDuplicate = 5,  // a live flow with this 4-tuple already exists on the back end
};
const char* refusal_name(Refusal r);

struct HandoffAck {
  FlowKey flow;
  Refusal refusal = Refusal::kNone;
  uint32_t isn2 = 0;
  uint32_t ts_base = 0;  // the TSval of the back end's captured SYN/ACK
  uint8_t backend_wscale = 0;
  bool operator==(const HandoffAck&) const = default;
};

// kMigrated (front end to back end): the flow moved to another node at a request boundary; the back end
// lets its socket go without a sound (the client must see no FIN or RST from it).
enum class CloseReason : uint8_t {
  kFin = 1,
  kReset = 2,
  kIdle = 3,
  kCancelled = 4,
  kAborted = 5,
  kMigrated = 6
};
const char* close_reason_name(CloseReason r);

struct FlowClosed {
  FlowKey flow;
  CloseReason reason = CloseReason::kFin;
  bool operator==(const FlowClosed&) const = default;
};

struct Heartbeat {
  uint32_t live_flows = 0;  // the sender's load: connections its web server holds (see Engine::node_load)
  bool draining = false;    // the sender takes no new handoffs while another node can serve them
  bool operator==(const Heartbeat&) const = default;
};

// `batonctl drain|undrain NODE` asked at another node: that node forwards it to NODE, which then says so
// in its heartbeats (the state lives with the drained node, so that every peer learns it, also one that
// was away when it was asked).
struct Drain {
  uint32_t node = 0;
  bool on = true;
  bool operator==(const Drain&) const = default;
};

// Sent once to each peer by a batond process when it first reaches that peer. flows_kept = false: this
// process took over no flows from its predecessor (NFQUEUE datapath, or a kernel datapath started
// afresh), so every handed-off flow the peer shares with this node has lost its translation here and
// must end.
struct Restarted {
  bool flows_kept = false;
  bool operator==(const Restarted&) const = default;
};

// Multiple handoff (docs/design.md, "Moving a connection at a request boundary"): before a flow's next
// request goes to another node, its front end asks the back end serving it to stop.
struct Quiesce {
  FlowKey flow;
  bool resume = false;  // the move was called off: carry on serving the flow as before
  bool operator==(const Quiesce&) const = default;
};

// The back end's answer. ok: the client has acknowledged every byte it sent, and from now on it sends
// the client nothing (its web server's FIN included) until told to resume or to let go (FlowClosed,
// kMigrated). Not ok: bytes stayed unacknowledged for the handoff timeout, or the flow is closing.
struct Quiesced {
  FlowKey flow;
  bool ok = false;
  uint32_t server_next = 0;  // the sequence number the client expects next from the server, in its view
  uint32_t client_next = 0;  // the sequence number the server expects next from the client
  bool operator==(const Quiesced&) const = default;
};

using Message = std::variant<Hello, Auth, HandoffRequest, HandoffAck, FlowClosed, Heartbeat, Restarted,
                             Quiesce, Quiesced, Drain>;

Bytes encode(const Message& m);

// Accumulates stream bytes and yields whole messages.
class Decoder {
 public:
  void feed(ByteView data);
  // nullopt: need more bytes. Error: the stream is corrupt and must be closed. Frames of types this
  // version does not know are skipped (a newer peer's additions).
  Result<std::optional<Message>> next();
  size_t buffered() const { return buf_.size() - start_; }
  uint64_t skipped() const { return skipped_; }

 private:
  Bytes buf_;
  size_t start_ = 0;
  uint64_t skipped_ = 0;
};

// Decodes exactly one frame body (version and type included); exposed for the fuzzer. Unknown types are
// errors here (the Decoder skips them before).
Result<Message> decode_body(ByteView body);

}  // namespace baton::proto
