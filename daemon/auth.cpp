#include "daemon/auth.hpp"

#include <openssl/crypto.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <stdexcept>
#include <vector>

#include "core/bytes.hpp"

namespace baton {

Nonce random_nonce() {
  Nonce n{};
  if (RAND_bytes(n.data(), static_cast<int>(n.size())) != 1) throw std::runtime_error("RAND_bytes failed");
  return n;
}

Mac hello_mac(const std::string& secret, uint32_t sender, uint32_t receiver, const Nonce& receiver_nonce,
              const Nonce& sender_nonce) {
  Bytes msg{'b', 'a', 't', 'o', 'n', '-', 'v', '1'};
  put32(msg, sender);
  put32(msg, receiver);
  msg.insert(msg.end(), receiver_nonce.begin(), receiver_nonce.end());
  msg.insert(msg.end(), sender_nonce.begin(), sender_nonce.end());
  Mac mac{};
  unsigned int len = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()), msg.data(), msg.size(), mac.data(),
       &len);
  return mac;
}

bool mac_equal(const Mac& a, const Mac& b) {
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace baton
