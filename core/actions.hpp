// What the handoff state machines ask the outside world to do. The daemon's engine carries these out
// against a datapath (verdicts, injection) and the control channel (messages).
#pragma once

#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include "core/bytes.hpp"
#include "core/close_state.hpp"
#include "core/dispatch.hpp"
#include "core/packet.hpp"
#include "core/protocol.hpp"
#include "core/translate.hpp"

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

// Send a whole IPv4 packet through the raw socket: into this node's own TCP stack (replays, resets of our
// own half-open connections) or, routed like any packet, to a client (our ACKs of held request bytes).
struct InjectLocal {
  Bytes packet;
  bool operator==(const InjectLocal&) const = default;
};

// Abort a local TCP socket (a replayed connection, named client -> this node): the kernel, which alone
// knows the socket's next sequence number, sends the client a reset that the datapath translates like any
// reply. Used when batond ends a flow on its own (idle timeout): the client must not stay half-open.
struct AbortLocalSocket {
  FlowKey key;
  bool operator==(const AbortLocalSocket&) const = default;
};

// Replay a SYN again (key: client -> this node), after clearing the 4-tuple. A TIME_WAIT of an older
// connection from the same client port (maybe through another front end: Linux offsets timestamps per
// address pair, so the new ones may look older to it) rejects the SYN with a bare ACK; the client's own
// stack would reset it (RFC 793: an ACK to a SYN gets a RST at SEG.ACK), but the client never sees our
// stack's answer, so the TIME_WAIT is removed here. A live connection on the tuple (the client talks
// to this node directly from the same port) is never touched: the SYN is not sent and the engine reports
// the collision to the back end (Backend::on_replay_collided) instead.
struct ReplayOnClearTuple {
  FlowKey key;
  Bytes syn;
  bool operator==(const ReplayOnClearTuple&) const = default;
};

// Look at a local TCP socket (key: client -> this node) and report its state to the back end
// (Backend::on_socket_probe): whether every byte it sent has been acknowledged, and how far it got.
struct ProbeSocket {
  FlowKey key;
  bool operator==(const ProbeSocket&) const = default;
};

// What a ProbeSocket found (tcp_info of the socket).
struct SocketProbe {
  bool found = false;
  bool established = false;  // TCP_ESTABLISHED: neither side has closed
  uint32_t unacked = 0;      // segments sent and not yet acknowledged
  uint32_t notsent = 0;      // bytes written by the application, not yet sent
  uint64_t bytes_acked = 0;  // by the client, since the SYN/ACK
  uint64_t bytes_received = 0;
  uint32_t unread = 0;             // received bytes the application has not read yet
  uint32_t since_sent_ms = 0;      // since the socket last sent data
  uint32_t since_received_ms = 0;  // since it last received data
};

// A connection this node's stack accepted and serves itself stays watched for its next requests: the back
// end takes its socket as one of its flows, whose translation changes nothing (Backend::
// adopt_local_socket), so that a later request can move it away like any handed-off connection.
struct AdoptLocalSocket {
  FlowKey key;  // client -> this node
  Translation xlate;
  uint32_t client_isn = 0;
};

// Where a connection this node's stack half-opened stands, for a socket restored there (TCP_REPAIR):
// batond answers the client itself on it, and the kernel does the rest (retransmission, FIN, TIME_WAIT).
struct RepairedConnection {
  FlowKey key;           // client -> this node
  uint32_t snd_nxt = 0;  // our next sequence number (ISN1 + 1: the SYN/ACK was all we sent)
  uint32_t rcv_nxt = 0;  // the client's, past the request (received, never to be read)
  uint16_t mss = 536;    // the client's
  bool window_scale = false;
  uint8_t snd_wscale = 0;  // the client's shift
  uint8_t rcv_wscale = 0;  // ours
  bool sack = false;
  bool timestamps = false;
  uint32_t tsval = 0;    // our clock where the client saw it last (the SYN/ACK's TSval)
  uint32_t snd_wnd = 0;  // the client's window, scaled
  uint32_t rcv_wnd = 0;  // the window we offered
  bool operator==(const RepairedConnection&) const = default;
};

// Answer a held connection from batond itself (the request dropped, the half-open connection of the local
// stack aborted first): a request no node can serve gets a 503 rather than the local web server's 404.
struct AnswerHere {
  RepairedConnection conn;
  std::string response;  // the whole HTTP response; the connection is closed after it
  bool operator==(const AnswerHere&) const = default;
};

// What the front end decided for a request, for the log: emitted for every request it could not read
// (the engine warns, rate-limited) and, when FrontendConfig::report_decisions is set (batond at debug
// level), for every decision.
struct Decided {
  enum Kind : uint8_t {
    kFirst,  // the connection's first request
    kNext,   // a later request of a kept-alive connection
    kRetry,  // another holder, after a refusal or an unreachable one
    kBad,    // not a request we can read: the web server answers it
  };
  FlowKey key;
  Kind kind = kFirst;
  std::string path;
  NodeId node = 0;
  const char* why = "";
  bool operator==(const Decided&) const = default;
};

struct SendMessage {
  NodeId to = 0;
  proto::Message message;
};

// Which state machine a flow belongs to. Flow keys always name the client -> this node direction.
enum class FlowRole : uint8_t { kFrontend, kBackend };

// Datapath programming. A kernel datapath acts on these (the eBPF one keeps maps in step); the NFQUEUE
// datapath, which sends every packet through user space anyway, ignores them.
//   Watch:   front end: this flow is being decided, send its packets to user space;
//            back end: a SYN is about to be replayed, capture the stack's SYN/ACK.
//   Offload: the flow's steady state, with its translation, may be handled without user space.
//   End:     the flow is over but its state lingers (stray packets are still translated).
//   Forget:  the flow's state is gone. With `to_local_stack` (a front-end flow served here, or given up
//            before its handshake ended), its packets belong to the local stack from now on: those still
//            on the slow path must reach it before any later one does.
struct WatchFlow {
  FlowRole role = FlowRole::kFrontend;
  FlowKey key;
  bool operator==(const WatchFlow&) const = default;
};
// A handed-off front-end flow whose request boundaries are watched (multiple handoff): where its next
// request starts and the node serving it. A kernel datapath sends requests for that node's content on
// itself and gives user space the segment of any other (DatapathPacket::starts_request).
struct RequestWatch {
  bool on = false;
  uint32_t next_request = 0;  // client sequence number
  NodeId node = 0;
  bool operator==(const RequestWatch&) const = default;
};
struct OffloadFlow {
  FlowRole role = FlowRole::kFrontend;
  FlowKey key;
  Translation xlate;
  RequestWatch watch;  // front end only
};
// The flow has ended (its state lingers a little for stray packets): a restarted batond must not adopt it.
struct EndFlow {
  FlowRole role = FlowRole::kFrontend;
  FlowKey key;
  bool operator==(const EndFlow&) const = default;
};
// Back end: send the client nothing of this flow (every reply dropped) until it is offloaded again or
// forgotten: the flow is moving to another node at a request boundary, and its web server may still
// close the connection or send a window update.
struct SilenceFlow {
  FlowKey key;
  bool operator==(const SilenceFlow&) const = default;
};
// Back end: user space saw part of a flow's close (the packet passed it, not the tc programs: the NFQUEUE
// path, the programs detached, a packet it delivered into the stack itself). A kernel datapath adds it to
// its own record of the flow, which sees the rest (close_state.hpp): the union of what both saw.
struct NoteClose {
  FlowKey key;  // client -> this node
  CloseState close;
  bool operator==(const NoteClose&) const = default;
};
struct ForgetFlow {
  FlowRole role = FlowRole::kFrontend;
  FlowKey key;
  bool to_local_stack = false;
  bool operator==(const ForgetFlow&) const = default;
};

using Action = std::variant<Verdict, InjectLocal, AbortLocalSocket, ReplayOnClearTuple, ProbeSocket,
                            AdoptLocalSocket, AnswerHere, Decided, SendMessage, WatchFlow, OffloadFlow,
                            EndFlow, SilenceFlow, NoteClose, ForgetFlow>;
using Actions = std::vector<Action>;

inline OffloadFlow offload_backend(const FlowKey& key, const Translation& xlate) {
  return {FlowRole::kBackend, key, xlate, {}};
}

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
