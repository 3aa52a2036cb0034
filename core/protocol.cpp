#include "core/protocol.hpp"

#include <algorithm>
#include <type_traits>

namespace baton::proto {

const char* refusal_name(Refusal r) {
  switch (r) {
    case Refusal::kNone:
      return "none";
    case Refusal::kNoListener:
      return "no-listener";
    case Refusal::kOverloaded:
      return "overloaded";
    case Refusal::kBadRequest:
      return "bad-request";
    case Refusal::kShuttingDown:
      return "shutting-down";
    case Refusal::kDuplicate:
      return "duplicate";
  }
  return "unknown";
}

const char* close_reason_name(CloseReason r) {
  switch (r) {
    case CloseReason::kFin:
      return "fin";
    case CloseReason::kReset:
      return "reset";
    case CloseReason::kIdle:
      return "idle";
    case CloseReason::kCancelled:
      return "cancelled";
    case CloseReason::kAborted:
      return "aborted";
    case CloseReason::kMigrated:
      return "migrated";
  }
  return "unknown";
}

namespace {

void put_bytes(Bytes& b, ByteView v) {
  put32(b, static_cast<uint32_t>(v.size()));
  b.insert(b.end(), v.begin(), v.end());
}

void put_flow(Bytes& b, const FlowKey& k) {
  put32(b, k.saddr);
  put32(b, k.daddr);
  put16(b, k.sport);
  put16(b, k.dport);
}

Type type_of(const Message& m) {
  return std::visit(
      [](const auto& v) -> Type {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, Hello>) return Type::kHello;
        if constexpr (std::is_same_v<T, Auth>) return Type::kAuth;
        if constexpr (std::is_same_v<T, HandoffRequest>) return Type::kHandoffRequest;
        if constexpr (std::is_same_v<T, HandoffAck>) return Type::kHandoffAck;
        if constexpr (std::is_same_v<T, FlowClosed>) return Type::kFlowClosed;
        if constexpr (std::is_same_v<T, Heartbeat>) return Type::kHeartbeat;
        if constexpr (std::is_same_v<T, Restarted>) return Type::kRestarted;
        if constexpr (std::is_same_v<T, Quiesce>) return Type::kQuiesce;
        if constexpr (std::is_same_v<T, Quiesced>) return Type::kQuiesced;
        if constexpr (std::is_same_v<T, Drain>) return Type::kDrain;
      },
      m);
}

void encode_body(Bytes& b, const Hello& m) {
  put32(b, m.node_id);
  b.insert(b.end(), m.nonce.begin(), m.nonce.end());
  put8(b, m.workers);
  put8(b, m.worker);
}
void encode_body(Bytes& b, const Auth& m) {
  b.insert(b.end(), m.mac.begin(), m.mac.end());
}
void encode_body(Bytes& b, const HandoffRequest& m) {
  put_flow(b, m.flow);
  put32(b, m.isn1);
  put8(b, m.granted_options);
  put8(b, m.frontend_wscale);
  put16(b, m.frontend_mss);
  put_bytes(b, m.syn);
  put_bytes(b, m.ack);
  put_bytes(b, m.request);
}
void encode_body(Bytes& b, const HandoffAck& m) {
  put_flow(b, m.flow);
  put8(b, static_cast<uint8_t>(m.refusal));
  put32(b, m.isn2);
  put32(b, m.ts_base);
  put8(b, m.backend_wscale);
}
void encode_body(Bytes& b, const FlowClosed& m) {
  put_flow(b, m.flow);
  put8(b, static_cast<uint8_t>(m.reason));
}
void encode_body(Bytes& b, const Heartbeat& m) {
  put32(b, m.live_flows);
  put8(b, m.draining ? 1 : 0);
}
void encode_body(Bytes& b, const Drain& m) {
  put32(b, m.node);
  put8(b, m.on ? 1 : 0);
}
void encode_body(Bytes& b, const Restarted& m) {
  put8(b, m.flows_kept ? 1 : 0);
}
void encode_body(Bytes& b, const Quiesce& m) {
  put_flow(b, m.flow);
  put8(b, m.resume ? 1 : 0);
}
void encode_body(Bytes& b, const Quiesced& m) {
  put_flow(b, m.flow);
  put8(b, m.ok ? 1 : 0);
  put32(b, m.server_next);
  put32(b, m.client_next);
}

// Bounds-checked reader over one frame body; every getter fails softly and poisons the reader.
class Reader {
 public:
  explicit Reader(ByteView b) : b_(b) {}
  bool ok() const { return ok_; }
  bool at_end() const { return pos_ == b_.size(); }
  uint8_t u8() { return need(1) ? b_[pos_++] : 0; }
  // A one-byte boolean: 0 or 1, anything else makes the message bad (bad_flag() names the first).
  bool flag(const char* name) {
    const uint8_t v = u8();
    if (v > 1 && !bad_flag_) bad_flag_ = name;
    return v == 1;
  }
  const char* bad_flag() const { return bad_flag_; }
  uint16_t u16() {
    if (!need(2)) return 0;
    pos_ += 2;
    return load16(b_, pos_ - 2);
  }
  uint32_t u32() {
    if (!need(4)) return 0;
    pos_ += 4;
    return load32(b_, pos_ - 4);
  }
  template <size_t N>
  std::array<uint8_t, N> fixed() {
    std::array<uint8_t, N> out{};
    if (!need(N)) return out;
    std::copy_n(b_.begin() + static_cast<std::ptrdiff_t>(pos_), N, out.begin());
    pos_ += N;
    return out;
  }
  Bytes bytes() {
    uint32_t n = u32();
    if (!need(n)) return {};
    Bytes out(b_.begin() + static_cast<std::ptrdiff_t>(pos_),
              b_.begin() + static_cast<std::ptrdiff_t>(pos_ + n));
    pos_ += n;
    return out;
  }
  FlowKey flow() {
    FlowKey k;
    k.saddr = u32();
    k.daddr = u32();
    k.sport = u16();
    k.dport = u16();
    return k;
  }

 private:
  bool need(size_t n) {
    if (!ok_ || b_.size() - pos_ < n) ok_ = false;
    return ok_;
  }
  ByteView b_;
  size_t pos_ = 0;
  bool ok_ = true;
  const char* bad_flag_ = nullptr;
};

}  // namespace

Bytes encode(const Message& m) {
  Bytes b;
  put32(b, 0);  // length, patched below
  put8(b, kVersion);
  put8(b, static_cast<uint8_t>(type_of(m)));
  std::visit([&b](const auto& v) { encode_body(b, v); }, m);
  store32(b, 0, static_cast<uint32_t>(b.size() - 4));
  return b;
}

Result<Message> decode_body(ByteView body) {
  if (body.size() < 2) return make_error("frame too short");
  if (body[0] != kVersion)
    return make_error("protocol version " + std::to_string(body[0]) + " (this node speaks " +
                      std::to_string(kVersion) + ")");
  Reader r(body.subspan(2));
  Message m;
  switch (static_cast<Type>(body[1])) {
    case Type::kHello: {
      Hello h;
      h.node_id = r.u32();
      h.nonce = r.fixed<16>();
      if (!r.at_end()) {
        h.workers = r.u8();
        h.worker = r.u8();
      }
      m = h;
      break;
    }
    case Type::kAuth: {
      Auth a;
      a.mac = r.fixed<32>();
      m = a;
      break;
    }
    case Type::kHandoffRequest: {
      HandoffRequest h;
      h.flow = r.flow();
      h.isn1 = r.u32();
      h.granted_options = r.u8();
      h.frontend_wscale = r.u8();
      h.frontend_mss = r.u16();
      h.syn = r.bytes();
      h.ack = r.bytes();
      h.request = r.bytes();
      m = std::move(h);
      break;
    }
    case Type::kHandoffAck: {
      HandoffAck a;
      a.flow = r.flow();
      uint8_t refusal = r.u8();
      if (refusal > static_cast<uint8_t>(Refusal::kDuplicate)) return make_error("unknown refusal code");
      a.refusal = static_cast<Refusal>(refusal);
      a.isn2 = r.u32();
      a.ts_base = r.u32();
      a.backend_wscale = r.u8();
      m = a;
      break;
    }
    case Type::kFlowClosed: {
      FlowClosed f;
      f.flow = r.flow();
      uint8_t reason = r.u8();
      if (reason < 1 || reason > static_cast<uint8_t>(CloseReason::kMigrated))
        return make_error("unknown close reason");
      f.reason = static_cast<CloseReason>(reason);
      m = f;
      break;
    }
    case Type::kHeartbeat: {
      Heartbeat h;
      h.live_flows = r.u32();
      h.draining = r.flag("draining");
      m = h;
      break;
    }
    case Type::kDrain: {
      Drain d;
      d.node = r.u32();
      d.on = r.flag("drain");
      m = d;
      break;
    }
    case Type::kRestarted: {
      m = Restarted{r.flag("flows_kept")};
      break;
    }
    case Type::kQuiesce: {
      Quiesce q;
      q.flow = r.flow();
      q.resume = r.flag("resume");
      m = q;
      break;
    }
    case Type::kQuiesced: {
      Quiesced q;
      q.flow = r.flow();
      q.ok = r.flag("ok");
      q.server_next = r.u32();
      q.client_next = r.u32();
      m = q;
      break;
    }
    default:
      return make_error("unknown message type " + std::to_string(body[1]));
  }
  if (r.bad_flag()) return make_error(std::string("bad ") + r.bad_flag() + " flag");
  if (!r.ok()) return make_error("truncated message body");
  // Trailing bytes: fields a newer node appended (see the compatibility rules in protocol.hpp).
  return m;
}

void Decoder::feed(ByteView data) {
  if (start_ > 0 && start_ == buf_.size()) {
    buf_.clear();
    start_ = 0;
  }
  buf_.insert(buf_.end(), data.begin(), data.end());
}

Result<std::optional<Message>> Decoder::next() {
  for (;;) {
    if (buffered() < 4) return std::optional<Message>{};
    uint32_t len = load32(buf_, start_);
    if (len < 2 || len > kMaxFrame) return make_error("bad frame length " + std::to_string(len));
    if (buffered() < 4 + size_t{len}) return std::optional<Message>{};
    const uint8_t version = buf_[start_ + 4];
    const uint8_t type = buf_[start_ + 5];
    if (version != kVersion || type <= static_cast<uint8_t>(kLastType)) break;
    start_ += 4 + len;  // a newer peer's message type: not ours to act on
    ++skipped_;
  }
  const uint32_t len = load32(buf_, start_);
  auto msg = decode_body(ByteView(buf_).subspan(start_ + 4, len));
  start_ += 4 + len;
  if (start_ > size_t{64} * 1024 && start_ * 2 > buf_.size()) {
    buf_.erase(buf_.begin(), buf_.begin() + static_cast<std::ptrdiff_t>(start_));
    start_ = 0;
  }
  if (!msg) return make_error(msg.error());
  return std::optional<Message>{std::move(*msg)};
}

}  // namespace baton::proto
