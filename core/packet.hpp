// IPv4 + TCP parsing and in-place editing with incremental checksum updates.
//
// A TcpPacket is a view over a mutable buffer that holds one IPv4 packet carrying TCP. Every setter keeps
// both checksums valid (or, for a packet whose TCP checksum was only partial, consistently partial): the
// same invariant the eBPF datapath keeps with bpf_l3_csum_replace / bpf_l4_csum_replace.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>

#include "core/bytes.hpp"
#include "core/result.hpp"

namespace baton {

namespace tcp_flag {
inline constexpr uint8_t kFin = 0x01;
inline constexpr uint8_t kSyn = 0x02;
inline constexpr uint8_t kRst = 0x04;
inline constexpr uint8_t kPsh = 0x08;
inline constexpr uint8_t kAck = 0x10;
}  // namespace tcp_flag

namespace tcp_opt {
inline constexpr uint8_t kEnd = 0;
inline constexpr uint8_t kNop = 1;
inline constexpr uint8_t kMss = 2;
inline constexpr uint8_t kWindowScale = 3;
inline constexpr uint8_t kSackPermitted = 4;
inline constexpr uint8_t kSack = 5;
inline constexpr uint8_t kTimestamp = 8;
inline constexpr uint8_t kFastOpen = 34;
}  // namespace tcp_opt

// Where each option lives, as offsets from the start of the TCP header (0 = absent, since no option can
// start at offset 0).
struct TcpOptions {
  std::optional<uint16_t> mss;
  std::optional<uint8_t> window_scale;
  bool sack_permitted = false;
  size_t window_scale_off = 0;    // offset of the option's kind byte
  size_t sack_permitted_off = 0;  // offset of the option's kind byte
  size_t timestamp_off = 0;       // offset of TSval; TSecr follows at +4
  size_t sack_off = 0;            // offset of the first SACK block
  uint8_t sack_blocks = 0;        // 1..4
  size_t fast_open_off = 0;       // offset of the TFO option's kind byte
  uint8_t fast_open_len = 0;
};

// A 4-tuple in host byte order, client side first where that matters to the caller.
struct FlowKey {
  uint32_t saddr = 0;
  uint32_t daddr = 0;
  uint16_t sport = 0;
  uint16_t dport = 0;
  bool operator==(const FlowKey&) const = default;
  FlowKey reversed() const { return {daddr, saddr, dport, sport}; }
};

struct FlowKeyHash {
  size_t operator()(const FlowKey& k) const {
    uint64_t h = (uint64_t{k.saddr} << 32 | k.daddr) * 0x9e3779b97f4a7c15ULL;
    h ^= (uint64_t{k.sport} << 16 | k.dport) + 0x7f4a7c159e3779b9ULL + (h << 6) + (h >> 2);
    return static_cast<size_t>(h);
  }
};

std::string format_ipv4(uint32_t addr);
// "a.b.c.d:port", as logs, errors and status show an address with its port.
std::string format_endpoint(uint32_t addr, uint16_t port);
std::optional<uint32_t> parse_ipv4(const std::string& text);
std::string format_key(const FlowKey& key);

class TcpPacket {
 public:
  // Validates lengths, version, protocol, header lengths and option framing. Does not verify checksums
  // (the kernel already did, or will). Fragments are rejected: TCP handoff never sees them on a sane MTU.
  static Result<TcpPacket> parse(MutableBytes buffer);

  uint32_t saddr() const { return load32(buf_, 12); }
  uint32_t daddr() const { return load32(buf_, 16); }
  uint16_t sport() const { return load16(buf_, l4_); }
  uint16_t dport() const { return load16(buf_, l4_ + 2); }
  uint32_t seq() const { return load32(buf_, l4_ + 4); }
  uint32_t ack() const { return load32(buf_, l4_ + 8); }
  uint8_t flags() const { return buf_[l4_ + 13]; }
  bool has(uint8_t flag) const { return (flags() & flag) != 0; }
  uint16_t window() const { return load16(buf_, l4_ + 14); }
  const TcpOptions& options() const { return opts_; }
  size_t payload_size() const { return buf_.size() - payload_; }
  ByteView payload() const { return ByteView(buf_).subspan(payload_); }
  size_t tcp_offset() const { return l4_; }
  size_t payload_offset() const { return payload_; }
  ByteView bytes() const { return buf_; }
  FlowKey key() const { return {saddr(), daddr(), sport(), dport()}; }
  // Sequence space the segment occupies: payload plus one for each of SYN and FIN.
  uint32_t seq_len() const {
    return static_cast<uint32_t>(payload_size()) + (has(tcp_flag::kSyn) ? 1 : 0) +
           (has(tcp_flag::kFin) ? 1 : 0);
  }

  std::optional<uint32_t> tsval() const;
  std::optional<uint32_t> tsecr() const;
  std::array<std::pair<uint32_t, uint32_t>, 4> sack_blocks() const;  // first options().sack_blocks valid

  // Editors. Each keeps the IP and TCP checksums consistent.
  void set_saddr(uint32_t addr);
  void set_daddr(uint32_t addr);
  void set_seq(uint32_t v);
  void set_ack(uint32_t v);
  void set_window(uint16_t v);
  void set_flags(uint8_t v);
  void set_tsval(uint32_t v);
  void set_tsecr(uint32_t v);
  void set_sack_block(size_t i, uint32_t left, uint32_t right);
  // Replaces an option (kind byte at `off`, `len` bytes) by NOPs, so that the header keeps its length.
  void nop_option(size_t off, size_t len);

  // Checksum verification (tests and the client-side checker); the datapath never needs it.
  bool ip_checksum_ok() const;
  bool tcp_checksum_ok() const;
  // Writes full, correct checksums (used when building packets from scratch).
  void fill_checksums();

 private:
  TcpPacket(MutableBytes buf, size_t l4, size_t payload, TcpOptions opts)
      : buf_(buf), l4_(l4), payload_(payload), opts_(opts) {}
  void replace_tcp(size_t tcp_off, ByteView bytes);
  void set_addr(size_t ip_off, uint32_t addr);
  void set_tcp32(size_t tcp_off, uint32_t v);

  MutableBytes buf_;
  size_t l4_;
  size_t payload_;
  TcpOptions opts_;
};

// The 4-tuple and flags of an IPv4/TCP packet, read without copying it, to route it before the full
// parse (the same header checks as TcpPacket::parse, options aside).
struct TcpPeek {
  FlowKey key;
  uint8_t flags = 0;
};
std::optional<TcpPeek> peek_tcp(ByteView packet);

// What a SYN/ACK says, whether it came as a packet (NFQUEUE) or as an event from the kernel (eBPF).
struct SynAckFacts {
  uint32_t seq = 0;
  uint32_t ack = 0;
  std::optional<uint32_t> tsval;
  std::optional<uint8_t> wscale;
  std::optional<uint16_t> mss;
  bool sack_permitted = false;
  uint16_t window = 0;  // unscaled (a SYN/ACK's window never is)
  static SynAckFacts of(const TcpPacket& p) {
    return {
        p.seq(),   p.ack(), p.tsval(), p.options().window_scale, p.options().mss, p.options().sack_permitted,
        p.window()};
  }
};

// Parses the option area of a TCP header; nullopt when an option's length runs past the header.
std::optional<TcpOptions> parse_tcp_options(ByteView tcp_header);

}  // namespace baton
