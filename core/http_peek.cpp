#include "core/http_peek.hpp"

#include <algorithm>
#include <cctype>
#include <string_view>

namespace baton {

namespace {

bool is_token_char(unsigned char c) {
  return std::isalnum(c) ||
         std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) != std::string_view::npos;
}

PeekResult bad(const char* reason) {
  PeekResult r;
  r.status = PeekStatus::kBad;
  r.reason = reason;
  return r;
}

// Finds "\r\n" (or a bare "\n", which HTTP/1.1 parsers tolerate) starting at `from`.
size_t find_eol(std::string_view s, size_t from, size_t* eol_len) {
  size_t n = s.find('\n', from);
  if (n == std::string_view::npos) return n;
  *eol_len = (n > from && s[n - 1] == '\r') ? 2 : 1;
  return n - (*eol_len - 1);
}

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::tolower(c); });
  return out;
}

}  // namespace

PeekResult peek_http_request(ByteView data, size_t max_header_bytes) {
  std::string_view s(reinterpret_cast<const char*>(data.data()), std::min(data.size(), max_header_bytes));
  // RFC 9112 2.2: ignore at least one empty line before the request line.
  size_t pos = 0;
  while (pos < s.size() && (s[pos] == '\r' || s[pos] == '\n') && pos < 4)
    ++pos;

  // Reject early when the first bytes cannot start a method, so that garbage is never held for long.
  for (size_t i = pos; i < s.size() && s[i] != ' '; ++i) {
    if (!is_token_char(static_cast<unsigned char>(s[i]))) return bad("invalid method character");
    if (i - pos > 32) return bad("method too long");
  }

  size_t eol_len = 0;
  size_t eol = find_eol(s, pos, &eol_len);
  if (eol == std::string_view::npos) {
    if (data.size() >= max_header_bytes) return bad("request line too long");
    return {};
  }
  std::string_view line = s.substr(pos, eol - pos);
  size_t sp1 = line.find(' ');
  size_t sp2 = line.rfind(' ');
  if (sp1 == std::string_view::npos || sp1 == sp2 || sp1 == 0) return bad("malformed request line");
  std::string_view method = line.substr(0, sp1);
  std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  std::string_view version = line.substr(sp2 + 1);
  if (version.size() != 8 || version.substr(0, 7) != "HTTP/1." ||
      !std::isdigit(static_cast<unsigned char>(version[7]))) {
    return bad("not HTTP/1.x");
  }
  if (target.empty()) return bad("empty request target");
  for (unsigned char c : target) {
    if (c <= 0x20 || c >= 0x7f) return bad("invalid character in request target");
  }

  PeekResult r;
  r.head.method = std::string(method);
  r.head.target = std::string(target);
  r.head.minor_version = version[7] - '0';

  // Origin form "/path?q", absolute form "http://host/path?q"; "*" and authority form are not routable.
  std::string_view path = target;
  if (path.substr(0, 7) == "http://" || path.substr(0, 8) == "https://") {
    size_t slash = path.find('/', path.find("//") + 2);
    path = slash == std::string_view::npos ? std::string_view("/") : path.substr(slash);
  }
  if (path.empty() || path[0] != '/') return bad("request target is not a path");
  path = path.substr(0, path.find_first_of("?#"));
  r.head.path = std::string(path);

  // Header fields up to the empty line.
  size_t cur = eol + eol_len;
  bool seen_length = false;
  for (;;) {
    eol = find_eol(s, cur, &eol_len);
    if (eol == std::string_view::npos) {
      if (data.size() >= max_header_bytes) return bad("header block too large");
      return {};
    }
    if (eol == cur) {
      r.head.header_bytes = eol + eol_len;
      r.status = PeekStatus::kComplete;
      return r;
    }
    std::string_view field = s.substr(cur, eol - cur);
    size_t colon = field.find(':');
    if (colon == std::string_view::npos || colon == 0) return bad("malformed header field");
    for (size_t i = 0; i < colon; ++i) {
      if (!is_token_char(static_cast<unsigned char>(field[i]))) return bad("invalid header name");
    }
    const std::string name = lower(field.substr(0, colon));
    std::string_view v = field.substr(colon + 1);
    while (!v.empty() && (v.front() == ' ' || v.front() == '\t'))
      v.remove_prefix(1);
    while (!v.empty() && (v.back() == ' ' || v.back() == '\t'))
      v.remove_suffix(1);
    if (name == "host") {
      r.head.host = std::string(v);
    } else if (name == "cookie") {
      // HTTP/2 style split Cookie headers may reach HTTP/1.1 too (RFC 6265 5.4 says one): joined.
      if (!r.head.cookie.empty()) r.head.cookie += "; ";
      r.head.cookie += v;
    } else if (name == "content-length") {
      // Digits only, at most 18 of them (no overflow); anything else leaves the body's end unknown, as
      // does a second Content-Length (RFC 9112 6.3: the message is then invalid anyway).
      const bool digits = !v.empty() && v.size() <= 18 &&
                          std::all_of(v.begin(), v.end(), [](char c) { return c >= '0' && c <= '9'; });
      if (!digits || seen_length) r.head.body_length_known = false;
      if (digits) r.head.body_bytes = std::stoull(std::string(v));
      seen_length = true;
    } else if (name == "transfer-encoding") {
      r.head.body_length_known = false;  // chunked (or worse): the end is in the body itself
    }
    cur = eol + eol_len;
  }
}

}  // namespace baton
