// Conversions between core/ types (host byte order) and the BPF ABI structs of bpf/baton_abi.h
// (addresses and ports in network order), shared by the eBPF datapath, its tests and its benchmark.
#pragma once

#include <arpa/inet.h>

#include "baton_abi.h"
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

}  // namespace baton
