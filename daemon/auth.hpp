// Control-channel authentication: each side proves knowledge of the cluster secret by an HMAC over both
// node ids and both fresh nonces, so that a recorded handshake cannot be replayed.
#pragma once

#include <array>
#include <cstdint>
#include <string>

namespace baton {

using Nonce = std::array<uint8_t, 16>;
using Mac = std::array<uint8_t, 32>;

Nonce random_nonce();
Mac hello_mac(const std::string& secret, uint32_t sender, uint32_t receiver, const Nonce& receiver_nonce,
              const Nonce& sender_nonce);
bool mac_equal(const Mac& a, const Mac& b);

}  // namespace baton
