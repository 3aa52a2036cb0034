#include <gtest/gtest.h>

#include "core/http_peek.hpp"
#include "tests/unit/packet_builder.hpp"

namespace baton {
namespace {

PeekResult peek(std::string_view s) {
  return peek_http_request(test::as_bytes(s));
}

TEST(HttpPeek, CompleteRequest) {
  auto r = peek("GET /videos/a.mp4?x=1 HTTP/1.1\r\nHost: example\r\nUser-Agent: t\r\n\r\n");
  ASSERT_EQ(r.status, PeekStatus::kComplete) << r.reason;
  EXPECT_EQ(r.head.method, "GET");
  EXPECT_EQ(r.head.path, "/videos/a.mp4");
  EXPECT_EQ(r.head.target, "/videos/a.mp4?x=1");
  EXPECT_EQ(r.head.host, "example");
  EXPECT_EQ(r.head.minor_version, 1);
}

TEST(HttpPeek, EveryPrefixOfAGoodRequestNeedsMore) {
  std::string req = "POST /upload HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc";
  size_t head_len = req.size() - 3;
  for (size_t n = 0; n < head_len; ++n) {
    EXPECT_EQ(peek(std::string_view(req).substr(0, n)).status, PeekStatus::kNeedMore) << n;
  }
  auto r = peek(req);
  ASSERT_EQ(r.status, PeekStatus::kComplete);
  EXPECT_EQ(r.head.header_bytes, head_len);
}

TEST(HttpPeek, AbsoluteFormAndBareLf) {
  auto r = peek("GET http://h.example/static/x HTTP/1.0\nHost: h\n\n");
  ASSERT_EQ(r.status, PeekStatus::kComplete) << r.reason;
  EXPECT_EQ(r.head.path, "/static/x");
  EXPECT_EQ(r.head.minor_version, 0);
}

TEST(HttpPeek, BadInputIsRecognisedEarly) {
  EXPECT_EQ(peek("\x16\x03\x01\x02\x00").status, PeekStatus::kBad);  // a TLS ClientHello
  EXPECT_EQ(peek("GET / HTTP/2.0\r\n\r\n").status, PeekStatus::kBad);
  EXPECT_EQ(peek("GET /\r\n\r\n").status, PeekStatus::kBad);
  EXPECT_EQ(peek("GET * HTTP/1.1\r\n\r\n").status, PeekStatus::kBad);
  EXPECT_EQ(peek("GET /a b HTTP/1.1\r\n\r\n").status, PeekStatus::kBad);
  EXPECT_EQ(peek("GET / HTTP/1.1\r\nno colon here\r\n\r\n").status, PeekStatus::kBad);
  EXPECT_EQ(peek("GET / HTTP/1.1\r\nBad Name: x\r\n\r\n").status, PeekStatus::kBad);
}

TEST(HttpPeek, OversizedHeaderBlockIsBad) {
  std::string req = "GET / HTTP/1.1\r\nCookie: " + std::string(kMaxHeaderBytes, 'a');
  EXPECT_EQ(peek(req).status, PeekStatus::kBad);
  std::string line = "GET /" + std::string(kMaxHeaderBytes, 'a');
  EXPECT_EQ(peek(line).status, PeekStatus::kBad);
}

TEST(HttpPeek, LargeCookieWithinLimitIsComplete) {
  std::string req = "GET /a HTTP/1.1\r\nCookie: " + std::string(16000, 'c') + "\r\n\r\n";
  EXPECT_EQ(peek(req).status, PeekStatus::kComplete);
}

// Where the next request of a keep-alive connection starts (multiple handoff needs it).
TEST(HttpPeek, BodyLengthTellsWhereTheNextRequestStarts) {
  auto get = peek("GET /a HTTP/1.1\r\nHost: h\r\n\r\n");
  EXPECT_TRUE(get.head.body_length_known);
  EXPECT_EQ(get.head.body_bytes, 0u);
  auto post = peek("POST /a HTTP/1.1\r\nContent-Length:  12 \r\n\r\n");
  ASSERT_EQ(post.status, PeekStatus::kComplete);
  EXPECT_TRUE(post.head.body_length_known);
  EXPECT_EQ(post.head.body_bytes, 12u);
  for (const char* unknown : {"POST /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
                              "POST /a HTTP/1.1\r\nContent-Length: 1e3\r\n\r\n",
                              "POST /a HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n",
                              "POST /a HTTP/1.1\r\nContent-Length: 9999999999999999999\r\n\r\n"}) {
    auto r = peek(unknown);
    ASSERT_EQ(r.status, PeekStatus::kComplete) << unknown;
    EXPECT_FALSE(r.head.body_length_known) << unknown;
  }
}

}  // namespace
}  // namespace baton
