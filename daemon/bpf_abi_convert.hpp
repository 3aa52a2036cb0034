// Conversions between core/ types (host byte order) and the BPF ABI structs of bpf/baton_abi.h
// (addresses and ports in network order), shared by the eBPF datapath, its tests and its benchmark.
#pragma once

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>

#include "baton_abi.h"
#include "core/bytes.hpp"
#include "core/close_state.hpp"
#include "core/content_prefixes.hpp"
#include "core/packet.hpp"
#include "core/translate.hpp"

namespace baton {

// Every field is named on both sides: a field added to an ABI struct without a conversion fails the
// build (a missing initializer is an error under -Werror=missing-field-initializers; a structured
// binding of the wrong size does not compile), and so does one added to the core type.

inline baton_flow_key to_abi(const FlowKey& k) {
  const auto& [saddr, daddr, sport, dport] = k;
  return baton_flow_key{htonl(saddr), htonl(daddr), htons(sport), htons(dport)};
}

inline FlowKey from_abi(const baton_flow_key& a) {
  const auto& [saddr, daddr, sport, dport] = a;
  return {ntohl(saddr), ntohl(daddr), ntohs(sport), ntohs(dport)};
}

inline baton_xlate to_abi(const Translation& t) {
  const auto& [frontend_addr, backend_addr, isn1, isn2, ts_offset, timestamps, frontend_wscale,
               backend_wscale] = t;
  return baton_xlate{htonl(frontend_addr),
                     htonl(backend_addr),
                     isn1,
                     isn2,
                     ts_offset,
                     static_cast<uint8_t>(timestamps ? 1 : 0),
                     frontend_wscale,
                     backend_wscale,
                     /*pad=*/0};
}

inline Translation from_abi(const baton_xlate& x) {
  const auto& [frontend_addr, backend_addr, isn1, isn2, ts_offset, timestamps, frontend_wscale,
               backend_wscale, pad] = x;
  (void)pad;
  return Translation{ntohl(frontend_addr), ntohl(backend_addr), isn1,          isn2, ts_offset,
                     timestamps != 0,      frontend_wscale,     backend_wscale};
}

// A back-end flow entry's close record (flags, FIN ends) as a CloseState, and a CloseState added to one:
// the tc programs and user space track the same close (core/close_state.hpp).
inline CloseState close_state_of(const baton_be_flow& f) {
  const uint32_t c = f.close_flags;
  CloseState s;
  s.client_fin = (c & BATON_CLOSE_CLIENT_FIN) != 0;
  s.server_fin = (c & BATON_CLOSE_SERVER_FIN) != 0;
  s.client_fin_acked = (c & BATON_CLOSE_CLIENT_FIN_ACKED) != 0;
  s.server_fin_acked = (c & BATON_CLOSE_SERVER_FIN_ACKED) != 0;
  s.reset = (c & BATON_CLOSE_RESET) != 0;
  s.client_fin_end = f.client_fin_end;
  s.server_fin_end = f.server_fin_end;
  return s;
}

inline void add_close_state(baton_be_flow& f, const CloseState& seen) {
  CloseState s = close_state_of(f);
  s.merge(seen);
  f.close_flags |=
      (s.client_fin ? BATON_CLOSE_CLIENT_FIN : 0u) | (s.server_fin ? BATON_CLOSE_SERVER_FIN : 0u) |
      (s.client_fin_acked ? BATON_CLOSE_CLIENT_FIN_ACKED : 0u) |
      (s.server_fin_acked ? BATON_CLOSE_SERVER_FIN_ACKED : 0u) | (s.reset ? BATON_CLOSE_RESET : 0u);
  f.client_fin_end = s.client_fin_end;
  f.server_fin_end = s.server_fin_end;
}

// One entry of the kernel's content trie (prefix lengths in bits, as the LPM trie counts them).
struct ContentEntryAbi {
  baton_content_key key;
  baton_content value;
};

inline ContentEntryAbi to_abi(const PrefixEntry& e) {
  const auto& [prefix, local, unsure, holders, wide] = e;
  ContentEntryAbi a{};
  const size_t n = std::min<size_t>(prefix.size(), BATON_PATH_MAX);
  a.key.prefixlen = static_cast<uint32_t>(8 * n);
  std::memcpy(a.key.path, prefix.data(), n);
  a.value = baton_content{holders,
                          (local ? BATON_CONTENT_LOCAL : 0u) | (unsure ? BATON_CONTENT_UNSURE : 0u) |
                              (wide ? BATON_CONTENT_WIDE : 0u),
                          /*pad=*/0};
  return a;
}

// What tc recorded of a connection it triaged: the client's SYN and the stack's SYN/ACK.
struct TriageRecord {
  Bytes syn;
  std::optional<SynAckFacts> synack;  // none when tc never saw it
  uint32_t client_isn = 0;
  bool client_acked = false;
  bool local_watch = false;  // served here from its first request on (BATON_TRIAGE_LOCAL_WATCH)
  uint32_t next_request = 0;
  uint64_t last_ns = 0;
};

inline TriageRecord from_abi(const baton_fe_triage& t) {
  const auto& [last_ns, client_isn, flags, isn1, tsval, mss, has_timestamp, wscale, sack_permitted, pad,
               window, syn_len, syn, pad2, next_request] = t;
  (void)pad;
  (void)pad2;
  TriageRecord r;
  r.syn.assign(syn, syn + std::min<size_t>(syn_len, BATON_SYN_MAX));
  r.client_isn = client_isn;
  r.client_acked = (flags & BATON_TRIAGE_CLIENT_ACKED) != 0;
  r.local_watch = (flags & BATON_TRIAGE_LOCAL_WATCH) != 0;
  r.next_request = next_request;
  r.last_ns = last_ns;
  if (flags & BATON_TRIAGE_SYNACK_SEEN) {
    SynAckFacts f;
    f.seq = isn1;
    f.ack = client_isn + 1;
    if (has_timestamp) f.tsval = tsval;
    if (wscale != 0xff) f.wscale = wscale;
    if (mss) f.mss = mss;
    f.sack_permitted = sack_permitted != 0;
    f.window = window;
    r.synack = f;
  }
  return r;
}

}  // namespace baton
