// Conversions between core/ types (host byte order) and the BPF ABI structs of bpf/baton_abi.h
// (addresses and ports in network order), shared by the eBPF datapath, its tests and its benchmark.
#pragma once

#include <arpa/inet.h>

#include "baton_abi.h"
#include "core/packet.hpp"
#include "core/translate.hpp"

namespace baton {

inline baton_flow_key to_abi(const FlowKey& k) {
  baton_flow_key a{};
  a.saddr = htonl(k.saddr);
  a.daddr = htonl(k.daddr);
  a.sport = htons(k.sport);
  a.dport = htons(k.dport);
  return a;
}

inline FlowKey from_abi(const baton_flow_key& a) {
  return {ntohl(a.saddr), ntohl(a.daddr), ntohs(a.sport), ntohs(a.dport)};
}

inline baton_xlate to_abi(const Translation& t) {
  baton_xlate x{};
  x.frontend_addr = htonl(t.frontend_addr);
  x.backend_addr = htonl(t.backend_addr);
  x.isn1 = t.isn1;
  x.isn2 = t.isn2;
  x.ts_offset = t.ts_offset;
  x.timestamps = t.timestamps ? 1 : 0;
  x.frontend_wscale = t.frontend_wscale;
  x.backend_wscale = t.backend_wscale;
  return x;
}

inline Translation from_abi(const baton_xlate& x) {
  Translation t;
  t.frontend_addr = ntohl(x.frontend_addr);
  t.backend_addr = ntohl(x.backend_addr);
  t.isn1 = x.isn1;
  t.isn2 = x.isn2;
  t.ts_offset = x.ts_offset;
  t.timestamps = x.timestamps != 0;
  t.frontend_wscale = x.frontend_wscale;
  t.backend_wscale = x.backend_wscale;
  return t;
}

}  // namespace baton
