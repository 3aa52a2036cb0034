#include "core/packet.hpp"

#include <arpa/inet.h>

#include "core/checksum.hpp"

namespace baton {

std::string format_ipv4(uint32_t addr) {
  return std::to_string(addr >> 24) + "." + std::to_string((addr >> 16) & 0xff) + "." +
         std::to_string((addr >> 8) & 0xff) + "." + std::to_string(addr & 0xff);
}

std::optional<uint32_t> parse_ipv4(const std::string& text) {
  in_addr a{};
  if (inet_pton(AF_INET, text.c_str(), &a) != 1) return std::nullopt;
  return ntohl(a.s_addr);
}

std::string format_endpoint(uint32_t addr, uint16_t port) {
  return format_ipv4(addr) + ":" + std::to_string(port);
}

std::string format_key(const FlowKey& k) {
  return format_endpoint(k.saddr, k.sport) + "->" + format_endpoint(k.daddr, k.dport);
}

std::optional<TcpOptions> parse_tcp_options(ByteView hdr) {
  TcpOptions o;
  size_t i = 20;
  while (i < hdr.size()) {
    uint8_t kind = hdr[i];
    if (kind == tcp_opt::kEnd) break;
    if (kind == tcp_opt::kNop) {
      ++i;
      continue;
    }
    if (i + 1 >= hdr.size()) return std::nullopt;
    uint8_t len = hdr[i + 1];
    if (len < 2 || i + len > hdr.size()) return std::nullopt;
    switch (kind) {
      case tcp_opt::kMss:
        if (len != 4) return std::nullopt;
        o.mss = load16(hdr, i + 2);
        break;
      case tcp_opt::kWindowScale:
        if (len != 3) return std::nullopt;
        o.window_scale = hdr[i + 2];
        o.window_scale_off = i;
        break;
      case tcp_opt::kSackPermitted:
        if (len != 2) return std::nullopt;
        o.sack_permitted = true;
        o.sack_permitted_off = i;
        break;
      case tcp_opt::kTimestamp:
        if (len != 10) return std::nullopt;
        o.timestamp_off = i + 2;
        break;
      case tcp_opt::kSack:
        if (len < 10 || (len - 2) % 8 != 0 || len > 34) return std::nullopt;
        o.sack_off = i + 2;
        o.sack_blocks = static_cast<uint8_t>((len - 2) / 8);
        break;
      case tcp_opt::kFastOpen:
        o.fast_open_off = i;
        o.fast_open_len = len;
        break;
      default:
        break;  // unknown options pass through untouched
    }
    i += len;
  }
  return o;
}

namespace {
// The IPv4 checks both parsers share: where the TCP header starts, and where the packet ends (link-layer
// padding excluded).
struct Ipv4Bounds {
  size_t ihl = 0;
  size_t total = 0;
};

Result<Ipv4Bounds> ipv4_tcp_bounds(ByteView b) {
  if (b.size() < 20) return make_error("shorter than an IPv4 header");
  if ((b[0] >> 4) != 4) return make_error("not IPv4");
  size_t ihl = size_t{b[0] & 0x0fu} * 4;
  if (ihl < 20 || b.size() < ihl) return make_error("bad IPv4 header length");
  size_t total = load16(b, 2);
  if (total < ihl || total > b.size()) return make_error("bad IPv4 total length");
  if (b[9] != 6) return make_error("not TCP");
  if ((load16(b, 6) & 0x3fff) != 0) return make_error("IPv4 fragment");
  if (total < ihl + 20) return make_error("shorter than a TCP header");
  return Ipv4Bounds{ihl, total};
}
}  // namespace

std::optional<TcpPeek> peek_tcp(ByteView b) {
  auto bounds = ipv4_tcp_bounds(b);
  if (!bounds) return std::nullopt;
  const size_t l4 = bounds->ihl;
  return TcpPeek{{load32(b, 12), load32(b, 16), load16(b, l4), load16(b, l4 + 2)}, b[l4 + 13]};
}

Result<TcpPacket> TcpPacket::parse(MutableBytes b) {
  auto bounds = ipv4_tcp_bounds(b);
  if (!bounds) return make_error(bounds.error());
  const auto [ihl, total] = *bounds;
  b = b.first(total);  // drop link-layer padding
  size_t doff = size_t{static_cast<uint8_t>(b[ihl + 12] >> 4)} * 4;
  if (doff < 20 || ihl + doff > total) return make_error("bad TCP data offset");
  auto opts = parse_tcp_options(ByteView(b).subspan(ihl, doff));
  if (!opts) return make_error("malformed TCP options");
  return TcpPacket(b, ihl, ihl + doff, *opts);
}

std::optional<uint32_t> TcpPacket::tsval() const {
  if (!opts_.timestamp_off) return std::nullopt;
  return load32(buf_, l4_ + opts_.timestamp_off);
}

std::optional<uint32_t> TcpPacket::tsecr() const {
  if (!opts_.timestamp_off) return std::nullopt;
  return load32(buf_, l4_ + opts_.timestamp_off + 4);
}

std::array<std::pair<uint32_t, uint32_t>, 4> TcpPacket::sack_blocks() const {
  std::array<std::pair<uint32_t, uint32_t>, 4> out{};
  for (size_t i = 0; i < opts_.sack_blocks; ++i) {
    size_t off = l4_ + opts_.sack_off + i * 8;
    out[i] = {load32(buf_, off), load32(buf_, off + 4)};
  }
  return out;
}

void TcpPacket::replace_tcp(size_t tcp_off, ByteView bytes) {
  replace_and_update(buf_.subspan(l4_), 16, tcp_off, bytes);
}

void TcpPacket::set_tcp32(size_t tcp_off, uint32_t v) {
  std::array<uint8_t, 4> w{};
  store32(w, 0, v);
  replace_tcp(tcp_off, w);
}

void TcpPacket::set_addr(size_t ip_off, uint32_t addr) {
  std::array<uint8_t, 4> old_w{};
  std::array<uint8_t, 4> new_w{};
  store32(old_w, 0, load32(buf_, ip_off));
  store32(new_w, 0, addr);
  // The address is in the IP header and in the TCP pseudo header: both checksums change.
  replace_and_update(buf_.first(l4_), 10, ip_off, new_w);
  update_for_external_change(buf_.subspan(l4_), 16, old_w, new_w);
}

void TcpPacket::set_saddr(uint32_t addr) {
  set_addr(12, addr);
}
void TcpPacket::set_daddr(uint32_t addr) {
  set_addr(16, addr);
}
void TcpPacket::set_seq(uint32_t v) {
  set_tcp32(4, v);
}
void TcpPacket::set_ack(uint32_t v) {
  set_tcp32(8, v);
}
void TcpPacket::set_tsval(uint32_t v) {
  set_tcp32(opts_.timestamp_off, v);
}
void TcpPacket::set_tsecr(uint32_t v) {
  set_tcp32(opts_.timestamp_off + 4, v);
}

void TcpPacket::set_window(uint16_t v) {
  std::array<uint8_t, 2> w{};
  store16(w, 0, v);
  replace_tcp(14, w);
}

void TcpPacket::set_flags(uint8_t v) {
  std::array<uint8_t, 1> w{v};
  replace_tcp(13, w);
}

void TcpPacket::set_sack_block(size_t i, uint32_t left, uint32_t right) {
  set_tcp32(opts_.sack_off + i * 8, left);
  set_tcp32(opts_.sack_off + i * 8 + 4, right);
}

void TcpPacket::nop_option(size_t off, size_t len) {
  for (size_t i = 0; i < len; ++i) {
    std::array<uint8_t, 1> nop{tcp_opt::kNop};
    replace_tcp(off + i, nop);
  }
  if (auto o = parse_tcp_options(ByteView(buf_).subspan(l4_, payload_ - l4_))) opts_ = *o;
}

bool TcpPacket::ip_checksum_ok() const {
  return ipv4_header_checksum(buf_.first(l4_)) == load16(buf_, 10);
}

bool TcpPacket::tcp_checksum_ok() const {
  return tcp_checksum(saddr(), daddr(), ByteView(buf_).subspan(l4_)) == load16(buf_, l4_ + 16);
}

void TcpPacket::fill_checksums() {
  store16(buf_, 10, ipv4_header_checksum(buf_.first(l4_)));
  store16(buf_, l4_ + 16, tcp_checksum(saddr(), daddr(), ByteView(buf_).subspan(l4_)));
}

}  // namespace baton
