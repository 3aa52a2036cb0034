// The datapath: where packets of the service port come from and go to. batond's engine sees only this
// interface, so that the user-space reference (NFQUEUE) and later kernel datapaths are interchangeable.
#pragma once

#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/actions.hpp"
#include "core/bytes.hpp"
#include "core/dispatch.hpp"
#include "core/result.hpp"

namespace baton {

enum class Direction {
  kIngress,  // from the network to this node's service address (before the local stack sees it)
  kEgress,   // from this node's stack towards a client
};

struct DatapathPacket {
  PacketId id = 0;
  Direction direction = Direction::kIngress;
  ByteView bytes;
  uint32_t mark = 0;  // skb->mark as the kernel queued it (tc's marks under the eBPF datapath)
  // Front end: the kernel watched this handed-off flow's requests (RequestWatch) and stopped here, at the
  // segment that starts the next one.
  bool starts_request = false;
};

// What a kernel datapath reports instead of handing the packet itself to user space.
struct DatapathEvent {
  enum Kind {
    kFrontendSynAck,
    kFrontendTriaged,     // the kernel followed a new connection and gives it to user space: syn + synack
    kFrontendSuperseded,  // a new connection came on the tuple of a flow that was over: the kernel forgot it
    kBackendSynAck,
    kBackendRefused,
    kBackendBlocked,
    kBackendClosed
  };
  Kind kind = kFrontendSynAck;
  FlowKey key;  // client -> this node, host byte order
  SynAckFacts synack;
  Bytes syn;  // kFrontendTriaged: the client's SYN as it arrived
  // kFrontendTriaged: the stack has served the connection from its first request on; the packet that
  // follows starts a request the kernel could not send on (DatapathPacket::starts_request).
  bool served_here = false;
  bool reset = false;  // kBackendClosed: by RST
};

// A flow an earlier batond left offloaded in the kernel datapath, found at start.
struct AdoptedFlow {
  FlowRole role = FlowRole::kFrontend;
  FlowKey key;
  Translation xlate;
  bool closed = false;  // back end: the kernel saw it end while no batond ran
  bool reset = false;
};

// What a configuration reload may change in a datapath.
struct DatapathUpdate {
  std::vector<uint32_t> peer_service_addrs;  // every other node's service address
  const ContentMap* content = nullptr;       // the new content map (kernel triage)
  bool kernel_triage = true;
};

class Datapath {
 public:
  using Handler = std::function<void(const DatapathPacket&)>;
  using EventHandler = std::function<void(const DatapathEvent&)>;
  virtual ~Datapath() = default;
  virtual std::string name() const = 0;
  // Installs hooks; on error nothing is left behind.
  virtual Status start(Handler handler, EventHandler events) = 0;
  // Removes every hook, rule and queue it installed. Safe to call twice.
  virtual void stop() = 0;
  // A file descriptor that becomes readable when packets wait; then call poll().
  virtual int fd() const = 0;
  virtual void poll() = 0;
  virtual void verdict(const Verdict& v) = 0;
  // Delivers a packet to this node's own TCP stack.
  virtual void inject_local(ByteView packet) = 0;

  // WatchFlow / OffloadFlow / ForgetFlow from the state machines; a user-space datapath ignores them.
  // False when a WatchFlow found no room in the kernel: the flow is not tracked, and must not start.
  virtual bool program(const Action& /*action*/) { return true; }
  // Makes what the verdicts given since the last call changed visible to a kernel datapath (batched:
  // the engine calls it once per event it handled).
  virtual void flush() {}
  // Housekeeping of the datapath's own per-flow state (monotonic ms), called by the engine's timer.
  virtual void tick(uint64_t /*now_ms*/) {}
  // When the datapath last saw a packet of an offloaded flow (monotonic ms), if it tracks that.
  virtual std::optional<uint64_t> last_activity_ms(FlowRole /*role*/, const FlowKey& /*key*/) const {
    return std::nullopt;
  }
  // First requests the datapath gave to the local stack itself, never asking user space (kernel triage).
  virtual uint64_t served_locally() const { return 0; }
  // Counters and state for `batonctl status`.
  virtual nlohmann::json stats() const { return nlohmann::json::object(); }
  // Offloaded flows that survived a batond restart in the kernel, for the state machines to take over.
  virtual std::vector<AdoptedFlow> adopted_flows() { return {}; }
  // Stop but leave offloaded flows running in the kernel, for the next batond to adopt.
  virtual void stop_keeping_flows() { stop(); }
  // A configuration reload: applied without disturbing a flow; on error the old settings stay.
  virtual Status update(const DatapathUpdate& u) = 0;
  // What the kernel programs saw of each back-end flow's close (flows with nothing seen left out): read
  // when they are detached, so that user space tracks the rest (core/close_state.hpp).
  virtual std::vector<std::pair<FlowKey, CloseState>> close_states() const { return {}; }
  // Run-time attach/detach of kernel programs (`batonctl datapath ...`; Engine::switch_datapath).
  virtual Status attach() { return make_error("the " + name() + " datapath has no kernel programs"); }
  virtual Status detach() { return make_error("the " + name() + " datapath has no kernel programs"); }
  // With several workers only the first one's attach()/detach() switches the kernel; every other worker
  // prepares before it (attach: its flows' gates closed, as attach() does for the first one's) and
  // finishes after it (attach: what its queue still holds handled).
  virtual void prepare_switch(bool /*attach*/) {}
  virtual void finish_switch(bool /*attach*/) {}
};

}  // namespace baton
