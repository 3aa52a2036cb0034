// Fuzzes the front-end and back-end state machines together: the input is a script of events (client
// segments with chosen flags, numbers and payloads, the stacks' answers, control messages, timer ticks,
// peers going down or restarting) played against one Frontend (node 1) and one Backend (node 2), with the
// handoff requests the front end emits delivered to the back end. Whatever the order, nothing may crash
// or trip the sanitizers; every packet the machines build or rewrite must parse, with valid IPv4 and TCP
// checksums; and every packet handed to a machine gets exactly one verdict: never one for a packet it
// was not given or already judged, and, once every timer has run out, none left without (a queued packet
// without a verdict waits in the kernel forever).
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string_view>
#include <unordered_set>

#include "core/backend.hpp"
#include "core/frontend.hpp"
#include "tests/unit/packet_builder.hpp"

namespace {

using namespace baton;

constexpr uint32_t kClientIsn = 1000;
constexpr uint32_t kIsn1 = 5000;
constexpr uint32_t kIsn2 = 9000;

// Reads the script; past its end everything reads as zero, which ends the loop.
class Script {
 public:
  Script(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  bool done() const { return pos_ >= size_; }
  uint8_t u8() { return pos_ < size_ ? data_[pos_++] : 0; }
  uint32_t u32() {
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i)
      v = v << 8 | u8();
    return v;
  }
  // A small signed offset: segments near the interesting numbers are what the machines must get right.
  int32_t delta() { return static_cast<int8_t>(u8()) * 97; }
  Bytes bytes(size_t max) {
    size_t n = u8() % (max + 1);
    Bytes b;
    while (n-- && !done())
      b.push_back(u8());
    return b;
  }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
};

// Every packet the machines hand out must be well-formed: the kernel would drop it otherwise, silently.
void check_packet(const Bytes& b) {
  Bytes copy = b;
  auto p = TcpPacket::parse(copy);
  if (!p || !p->ip_checksum_ok() || !p->tcp_checksum_ok()) std::abort();
}

struct Rig {
  ContentMap map;
  Frontend fe;
  Backend be;
  std::optional<proto::HandoffRequest> request;  // the last one the front end sent
  bool peer_up = true;
  uint64_t now = 0;
  PacketId next_id = 1;
  std::unordered_set<PacketId> awaiting;  // handed to a machine, no verdict yet

  PacketId packet() {
    awaiting.insert(next_id);
    return next_id++;
  }

  Rig()
      : fe(
            FrontendConfig{
                .self = 1, .hold_timeout_ms = 100, .handoff_timeout_ms = 50, .idle_timeout_ms = 1000},
            map, PeerView{[this](NodeId n) { return n == 2 && peer_up; }, [](NodeId) { return 0u; }},
            [](NodeId n) { return n == 2 ? test::kNode2 : test::kNode1; }),
        be(BackendConfig{
            .self = 2, .service_addr = test::kNode2, .syn_retry_ms = 10, .idle_timeout_ms = 1000}) {
    map.add({"/two/", {2}});
    map.set_default({1});
  }

  void take(const Actions& actions) {
    for (const auto& a : actions) {
      if (const auto* v = std::get_if<Verdict>(&a)) {
        if (awaiting.erase(v->id) != 1) std::abort();  // a packet never given, or a second verdict
        if (!v->replacement.empty()) check_packet(v->replacement);
      } else if (const auto* inj = std::get_if<InjectLocal>(&a)) {
        check_packet(inj->packet);
      } else if (const auto* re = std::get_if<ReplayOnClearTuple>(&a)) {
        check_packet(re->syn);
      } else if (const auto* s = std::get_if<SendMessage>(&a)) {
        if (const auto* r = std::get_if<proto::HandoffRequest>(&s->message)) request = *r;
      }
    }
  }

  // Every timer runs out: whatever is still held must get its verdict now.
  void finish() {
    now += 24 * 3600 * 1000ULL;
    take(fe.on_tick(now));
    take(be.on_tick(now));
    if (!awaiting.empty()) std::abort();
  }

  test::Segment client_segment(Script& in, uint32_t daddr) {
    test::Segment s;
    s.daddr = daddr;
    s.sport = 40000 + (in.u8() & 1);
    s.flags = in.u8() & 0x1f;
    s.seq = kClientIsn + 1 + in.delta();
    s.ack = (daddr == test::kNode1 ? kIsn1 : kIsn2) + 1 + in.delta();
    if (in.u8() & 1) s.timestamps = {{in.u32(), in.u32()}};
    static constexpr std::string_view kPayloads[] = {
        "",     "GET /two/x HTTP/1.1\r\n\r\n", "GET /two/x HTTP/1.1\r\n",
        "\r\n", "GET /one HTTP/1.1\r\n\r\n",   "x"};
    uint8_t choice = in.u8() % 7;
    s.payload = choice < 6 ? test::as_bytes(kPayloads[choice]) : in.bytes(64);
    if (in.u8() & 1) s.sack = {{s.ack + 100, s.ack + 200}};
    return s;
  }

  void step(Script& in) {
    now += in.u8();
    switch (in.u8() % 16) {
      case 0: {  // the client's SYN
        test::Segment syn = test::client_syn(kClientIsn, in.u32());
        syn.sport = 40000 + (in.u8() & 1);
        take(fe.on_client_packet(packet(), test::build(syn), now));
        break;
      }
      case 1: {  // our stack's SYN/ACK
        // One read per statement: the order in which function arguments are evaluated is unspecified.
        const uint32_t tsval = in.u32();
        const uint32_t tsecr = in.u32();
        const auto wscale = static_cast<uint8_t>(in.u8() % 15);
        test::Segment sa = test::server_synack(test::kNode1, kIsn1, kClientIsn, tsval, tsecr, wscale);
        sa.dport = 40000 + (in.u8() & 1);
        take(fe.on_local_synack(packet(), test::build(sa), now));
        break;
      }
      case 2:
      case 3:
        take(fe.on_client_packet(packet(), test::build(client_segment(in, test::kNode1)), now));
        break;
      case 4:
        if (request) {
          proto::HandoffAck ack;
          ack.flow = request->flow;
          ack.refusal = static_cast<proto::Refusal>(in.u8() % 6);
          ack.isn2 = kIsn2;
          ack.ts_base = in.u32();
          ack.backend_wscale = in.u8() % 15;
          take(fe.on_handoff_ack(2, ack, now));
        }
        break;
      case 5:
        if (request) {
          auto reason = static_cast<proto::CloseReason>(1 + in.u8() % 5);
          take(fe.on_flow_closed(2, proto::FlowClosed{request->flow, reason}, now));
          take(be.on_flow_closed(1, proto::FlowClosed{request->flow, reason}, now));
        }
        break;
      case 6:
        take(fe.on_tick(now));
        take(be.on_tick(now));
        break;
      case 7:
        peer_up = !peer_up;
        if (!peer_up) {
          take(fe.on_peer_down(2, now));
          take(be.on_peer_down(1, now));
        }
        break;
      case 8:
        take(fe.on_peer_lost_flows(2, now));
        take(be.on_peer_lost_flows(1, now));
        break;
      case 9:  // the front end's request reaches the back end (maybe again, maybe mangled)
        if (request) {
          proto::HandoffRequest r = *request;
          if (in.u8() & 1 && !r.request.empty()) r.request[in.u8() % r.request.size()] ^= in.u8();
          take(be.on_handoff_request(1, r, now));
        }
        break;
      case 10: {  // the back end's stack answers: SYN/ACK, bare ACK (a TIME_WAIT) or RST
        const uint32_t client_isn = kClientIsn + in.delta();
        const uint32_t tsval = in.u32();
        const uint32_t tsecr = in.u32();
        const auto wscale = static_cast<uint8_t>(in.u8() % 15);
        test::Segment sa = test::server_synack(test::kNode2, kIsn2, client_isn, tsval, tsecr, wscale);
        sa.dport = 40000 + (in.u8() & 1);
        uint8_t kind = in.u8() % 3;
        if (kind == 1) sa.flags = tcp_flag::kAck;
        if (kind == 2) sa.flags = tcp_flag::kRst | tcp_flag::kAck;
        take(be.on_local_packet(packet(), test::build(sa), now));
        break;
      }
      case 11: {  // a later reply of the back end's stack
        const uint16_t dport = 40000 + (in.u8() & 1);
        const uint32_t seq = kIsn2 + 1 + in.delta();
        const uint32_t ack = kClientIsn + 1 + in.delta();
        test::Segment s = test::server_segment(test::kNode2, seq, ack, in.u8() & 0x1f);
        s.dport = dport;
        if (in.u8() & 1) s.timestamps = {{in.u32(), in.u32()}};
        s.window = static_cast<uint16_t>(in.u32());
        s.payload = in.bytes(32);
        take(be.on_local_packet(packet(), test::build(s), now));
        break;
      }
      case 12:  // a client segment forwarded to the back end
        take(be.on_client_packet(packet(), test::build(client_segment(in, test::kNode2)), now));
        break;
      case 13:
        if (request) {
          FlowKey key{request->flow.saddr, test::kNode2, request->flow.sport, request->flow.dport};
          switch (in.u8() % 3) {
            case 0:
              take(be.on_replay_blocked(key, now));
              break;
            case 1:
              take(be.on_replay_collided(key, now));
              break;
            default:
              take(be.on_datapath_closed(key, in.u8() & 1, now));
          }
        }
        break;
      case 14:
        if (request) take(fe.on_handoff_unsent(request->flow, now));
        break;
      default: {  // arbitrary bytes where a packet is expected
        Bytes junk = in.bytes(80);
        take(fe.on_client_packet(packet(), junk, now));
        take(be.on_local_packet(packet(), junk, now));
        take(be.on_client_packet(packet(), junk, now));
      }
    }
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Script in(data, size);
  Rig rig;
  for (int steps = 0; steps < 256 && !in.done(); ++steps)
    rig.step(in);
  rig.finish();
  // BATON_FUZZ_TRACE=1: how far an input got, to check that the seeds reach the states they are for.
  static const bool trace = std::getenv("BATON_FUZZ_TRACE") != nullptr;
  if (trace) {
    const auto& f = rig.fe.counters();
    const auto& b = rig.be.counters();
    std::fprintf(stderr,
                 "fe: seen %lu local %lu handed %lu refused %lu timeouts %lu lost %lu; be: accepted %lu "
                 "refused %lu blocked %lu rewritten %lu closed %lu\n",
                 f.flows_seen, f.served_locally, f.handed_off, f.handoff_refused, f.handoff_timeouts,
                 f.flows_lost, b.handoffs_accepted, b.handoffs_refused, b.replays_blocked,
                 b.packets_rewritten, b.flows_closed);
  }
  return 0;
}
