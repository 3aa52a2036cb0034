// Which worker a client's connections belong to (Config::workers): the top bits of a multiplicative hash
// of the client's address and port. Every node computes the same, so a flow's front end and back end
// give it to the same worker; under NFQUEUE the kernel computes it too (worker_match, classic BPF).
#pragma once

#include <cstdint>

namespace baton {

// Knuth's multiplicative hash (2^32 over the golden ratio): its top bits spread clients' ports that
// differ only in their low bits (Linux gives connect() even ports, one after the other), which the
// port's own low bits would not.
inline constexpr uint32_t kWorkerHashMultiplier = 0x9E3779B1U;

// How many top bits of the hash name the worker: log2 of a power-of-two worker count (at most 64).
constexpr uint32_t worker_hash_bits(uint32_t workers) {
  uint32_t bits = 0;
  while (bits < 31 && (1U << bits) < workers)
    ++bits;
  return bits;
}

constexpr uint32_t worker_of(uint32_t client_addr, uint16_t client_port, uint32_t workers) {
  const uint32_t bits = worker_hash_bits(workers);
  if (bits == 0) return 0;  // one worker; and a shift by 32 would be undefined
  return ((client_addr ^ client_port) * kWorkerHashMultiplier) >> (32 - bits);
}

}  // namespace baton
