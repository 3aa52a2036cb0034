// The datapath: where packets of the service port come from and go to. batond's engine sees only this
// interface, so that the user-space reference (NFQUEUE) and later kernel datapaths are interchangeable.
#pragma once

#include <functional>
#include <string>

#include "core/actions.hpp"
#include "core/bytes.hpp"
#include "core/result.hpp"

namespace baton {

struct Ok {};
using Status = Result<Ok>;

enum class Direction {
  kIngress,  // from the network to this node's service address (before the local stack sees it)
  kEgress,   // from this node's stack towards a client
};

struct DatapathPacket {
  PacketId id = 0;
  Direction direction = Direction::kIngress;
  ByteView bytes;
};

class Datapath {
 public:
  using Handler = std::function<void(const DatapathPacket&)>;
  virtual ~Datapath() = default;
  virtual std::string name() const = 0;
  // Installs hooks; on error nothing is left behind.
  virtual Status start(Handler handler) = 0;
  // Removes every hook, rule and queue it installed. Safe to call twice.
  virtual void stop() = 0;
  // A file descriptor that becomes readable when packets wait; then call poll().
  virtual int fd() const = 0;
  virtual void poll() = 0;
  virtual void verdict(const Verdict& v) = 0;
  // Delivers a packet to this node's own TCP stack.
  virtual void inject_local(ByteView packet) = 0;
};

}  // namespace baton
