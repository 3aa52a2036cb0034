// Fuzzes the control-protocol decoder: arbitrary stream bytes must never crash it, and whatever it
// accepts must survive a re-encode unchanged.
#include <cstdlib>

#include "core/protocol.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace baton::proto;
  Decoder d;
  // Feed in two pieces to exercise partial frames.
  size_t cut = size ? data[0] % (size + 1) : 0;
  d.feed(baton::ByteView(data, cut));
  d.feed(baton::ByteView(data + cut, size - cut));
  for (int i = 0; i < 64; ++i) {
    auto m = d.next();
    if (!m || !m->has_value()) break;
    Decoder again;
    again.feed(encode(**m));
    auto back = again.next();
    if (!back || !back->has_value() || !(**back == **m)) std::abort();
  }
  return 0;
}
