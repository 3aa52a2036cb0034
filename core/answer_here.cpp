#include "core/answer_here.hpp"

#include <algorithm>

#include "core/frontend.hpp"

namespace baton {

namespace {
// The client's window as its latest held segment (or the handshake's ACK) states it, unscaled.
uint16_t latest_client_window(const FeFlow& f) {
  for (auto h = f.held.rbegin(); h != f.held.rend(); ++h) {
    Bytes copy = h->bytes;
    if (auto p = TcpPacket::parse(copy)) return p->window();
  }
  Bytes ack = f.ack;
  if (auto p = TcpPacket::parse(ack)) return p->window();
  return 0;
}
}  // namespace

RepairedConnection repaired_connection(const FeFlow& f) {
  RepairedConnection c;
  c.key = f.key;
  c.snd_nxt = f.isn1 + 1;
  c.rcv_nxt = f.request.contiguous_end();
  Bytes syn = f.syn;
  auto parsed = TcpPacket::parse(syn);
  const TcpOptions client = parsed ? parsed->options() : TcpOptions{};
  c.mss = client.mss.value_or(536);
  c.window_scale = (f.granted & proto::granted::kWindowScale) != 0;
  c.snd_wscale = c.window_scale ? client.window_scale.value_or(0) : 0;
  c.rcv_wscale = c.window_scale ? f.wscale : 0;
  c.sack = (f.granted & proto::granted::kSack) != 0;
  c.timestamps = (f.granted & proto::granted::kTimestamps) != 0;
  c.tsval = f.synack_tsval;
  // Never zero: a zero window would hold the answer back until the client's next segment.
  c.snd_wnd = std::max<uint32_t>(uint32_t{latest_client_window(f)} << c.snd_wscale, c.mss);
  c.rcv_wnd = f.synack_window;
  return c;
}

std::string unavailable_response(bool head) {
  static constexpr std::string_view kBody = "No server of this cluster can serve the request now.\n";
  std::string r =
      "HTTP/1.1 503 Service Unavailable\r\n"
      "Content-Type: text/plain\r\n"
      "Content-Length: " +
      std::to_string(kBody.size()) +
      "\r\n"
      "Retry-After: 1\r\n"
      "Connection: close\r\n"
      "\r\n";
  if (!head) r += kBody;
  return r;
}

}  // namespace baton
