// Fuzzes the HTTP request peek: never crashes, and a complete result is consistent with its input.
#include <cstdlib>

#include "core/http_peek.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace baton;
  auto r = peek_http_request(ByteView(data, size), 4096);
  if (r.status == PeekStatus::kComplete) {
    if (r.head.header_bytes > size || r.head.path.empty() || r.head.path[0] != '/') std::abort();
  }
  return 0;
}
