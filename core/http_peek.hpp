// Peeks at the start of an HTTP/1.x request to learn what it asks for, without consuming it: the bytes
// are later delivered unchanged, to the local web server or to the back end.
#pragma once

#include <cstddef>
#include <string>

#include "core/bytes.hpp"

namespace baton {

enum class PeekStatus {
  kNeedMore,  // the header block is not complete yet
  kComplete,  // request line and headers parsed
  kBad,       // not an HTTP/1.x request we can route; serve it locally and let the web server answer
};

struct HttpRequestHead {
  std::string method;
  std::string target;  // as sent
  std::string path;    // the target's path, without query or fragment, "/" based
  std::string host;
  std::string cookie;  // the Cookie header's value (for dispatch by a cookie)
  int minor_version = 1;
  size_t header_bytes = 0;  // bytes up to and including the empty line
  // Where the next request on the connection starts: header_bytes + body_bytes, unless the body's end is
  // not known from the header (chunked, or a length that does not parse).
  uint64_t body_bytes = 0;
  bool body_length_known = true;
};

struct PeekResult {
  PeekStatus status = PeekStatus::kNeedMore;
  HttpRequestHead head;
  const char* reason = "";  // why kBad (a literal)
};

// Larger header blocks are treated as bad: the web server refuses them anyway (nginx: 400/414).
inline constexpr size_t kMaxHeaderBytes = size_t{64} * 1024;

PeekResult peek_http_request(ByteView data, size_t max_header_bytes = kMaxHeaderBytes);

}  // namespace baton
