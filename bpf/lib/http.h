/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The request line at the start of a segment's payload, matched against the content map: whether this
 * node serves the request itself. Deliberately narrow: it answers "local" only for a well-formed
 * HTTP/1.x request line that lies wholly in the segment (method of capital letters, an origin-form
 * target), exactly where core/http_peek.cpp + core/dispatch.cpp would serve the request here too;
 * everything else is left to user space, which sees the whole request.
 */
#ifndef BATON_HTTP_H
#define BATON_HTTP_H

#include "maps.h"
#include "parse.h"

#define REQ_SCAN 256  /* the longest request line the kernel reads: a longer one goes to user space */
#define REQ_BUF	 1024 /* the most of a segment loaded: a longer request head goes to user space */

/* Per-CPU room for what does not fit on the BPF stack. Only ingress uses it: not pinned. */
struct baton_scratch {
	__u8 req[REQ_BUF];
	struct baton_content_key key;
	struct baton_fe_triage triage;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct baton_scratch);
} baton_scratch SEC(".maps");

static __always_inline struct baton_scratch *scratch(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&baton_scratch, &zero);
}

enum req_stage {
	REQ_METHOD = 0,
	REQ_PATH = 1,
	REQ_QUERY = 2, /* the rest of the target after '?' or '#' */
};

struct req_scan {
	struct baton_scratch *s;
	__u32 n;	  /* bytes loaded */
	__u32 stage;	  /* enum req_stage */
	__u32 path_start; /* index of the target's '/' */
	__u32 path_len;
	__u32 target_end; /* index of the space after the target; 0 until found */
	__u32 bad;
};

/* One byte per call (bpf_loop): the verifier checks this body once, not once per byte. */
static long scan_request_byte(__u32 i, void *ctx)
{
	struct req_scan *r = ctx;
	__u32 k;
	__u8 c;

	if (i >= r->n) {
		r->bad = 1; /* the line does not end in this segment */
		return 1;
	}
	c = r->s->req[i & (REQ_BUF - 1)];
	if (r->stage == REQ_METHOD) {
		if (c == ' ' && i > 0) {
			r->stage = REQ_PATH;
			r->path_start = i + 1;
			return 0;
		}
		if (c < 'A' || c > 'Z' || i >= 16) {
			r->bad = 1;
			return 1;
		}
		return 0;
	}
	if (r->stage == REQ_PATH && i == r->path_start && c != '/') {
		r->bad = 1; /* absolute form, "*", authority form: user space */
		return 1;
	}
	if (c == ' ') {
		if (r->stage == REQ_PATH)
			r->path_len = i - r->path_start;
		r->target_end = i;
		return 1;
	}
	if (c <= 0x20 || c >= 0x7f) {
		r->bad = 1;
		return 1;
	}
	if (r->stage == REQ_PATH) {
		if (c == '?' || c == '#') {
			r->path_len = i - r->path_start;
			r->stage = REQ_QUERY;
			return 0;
		}
		k = i - r->path_start;
		if (k < BATON_PATH_MAX)
			r->s->key.path[k & (BATON_PATH_MAX - 1)] = c;
	}
	return 0;
}

static __always_inline int is_version(const __u8 *b, __u32 at)
{
	/* " HTTP/1.x" then the line's end */
	const char want[] = " HTTP/1.";
	__u32 i;

#pragma unroll
	for (i = 0; i < sizeof(want) - 1; i++) {
		if (b[(at + i) & (REQ_BUF - 1)] != want[i])
			return 0;
	}
	i = b[(at + 8) & (REQ_BUF - 1)];
	if (i < '0' || i > '9')
		return 0;
	i = b[(at + 9) & (REQ_BUF - 1)];
	return i == '\r' || i == '\n';
}

/**
 * read_request_line() - the content map's entry for the request starting the payload (@len bytes at
 * @off), or NULL when the kernel cannot tell (not a whole, plain request line in this segment). The
 * payload, up to REQ_BUF bytes, is left in the scratch buffer, and *@line_end is the index of the line's
 * end ('\r' or '\n').
 */
static __always_inline const struct baton_content *read_request_line(struct __sk_buff *skb, __u32 off,
								     __u32 len, __u32 *line_end)
{
	struct baton_scratch *s = scratch();
	struct req_scan r = {};
	__u32 n = len;

	if (!s)
		return 0;
	if (n > REQ_BUF)
		n = REQ_BUF;
	if (n < 16) /* "GET / HTTP/1.1\r\n" */
		return 0;
	if (bpf_skb_load_bytes(skb, off, s->req, n))
		return 0;
	r.s = s;
	r.n = n < REQ_SCAN ? n : REQ_SCAN;
	bpf_loop(REQ_SCAN, scan_request_byte, &r, 0);
	if (r.bad || !r.target_end || r.target_end + 10 > r.n || !is_version(s->req, r.target_end))
		return 0;
	*line_end = r.target_end + 9;
	s->key.prefixlen = 8 * (r.path_len < BATON_PATH_MAX ? r.path_len : BATON_PATH_MAX);
	return bpf_map_lookup_elem(&baton_content, &s->key);
}

/*
 * The two questions below are global functions: the verifier checks each once, on its own, instead of
 * once per path that reaches it (the program would exceed its complexity limit). Their arguments are the
 * payload's offset and length in the packet.
 */

/* Whether this node serves the request at the start of the payload itself, for certain. */
__attribute__((noinline)) int request_is_local(struct __sk_buff *skb, __u32 off, __u32 len)
{
	__u32 line_end = 0;
	const struct baton_content *c = read_request_line(skb, off, len, &line_end);

	return c && (c->flags & BATON_CONTENT_LOCAL) && !(c->flags & BATON_CONTENT_UNSURE);
}

struct head_scan {
	struct baton_scratch *s;
	__u32 from;	/* the request line's end */
	__u32 n;	/* bytes loaded */
	__u32 at_start; /* at the start of a header line ('\r' there not counted) */
	__u32 end;	/* index after the empty line that ends the head; 0 until found */
	__u32 body;	/* a header that announces a body */
};

/* Eight bytes as one little-endian word, for comparing a header name eight bytes at a time. */
#define LE8(a, b, c, d, e, f, g, h)                                                                          \
	((__u64)(a) | (__u64)(b) << 8 | (__u64)(c) << 16 | (__u64)(d) << 24 | (__u64)(e) << 32 |             \
	 (__u64)(f) << 40 | (__u64)(g) << 48 | (__u64)(h) << 56)
#define LOWER8 0x2020202020202020ull /* or-ed in: upper-case letters become lower-case ('-' and ':' stay) */

/*
 * Whether the header line at @at is Content-Length or Transfer-Encoding (any case). Words are read
 * whole, with no index that depends on the line: the verifier then sees every byte alike (see
 * scan_head_byte). The words may reach past the bytes loaded, into stale scratch: at worst a request
 * goes to user space for nothing.
 */
static __always_inline int announces_body(const __u8 *req, __u32 at)
{
	const __u8 *b = &req[at & (REQ_BUF - 1)];
	__u64 w0, w1, w2;

	__builtin_memcpy(&w0, b, 8);
	__builtin_memcpy(&w1, b + 8, 8);
	__builtin_memcpy(&w2, b + 16, 8);
	w0 |= LOWER8;
	w1 |= LOWER8;
	w2 |= LOWER8;
	if (w0 == LE8('c', 'o', 'n', 't', 'e', 'n', 't', '-') &&
	    (w1 & 0x00ffffffffffffffull) == LE8('l', 'e', 'n', 'g', 't', 'h', ':', 0))
		return 1;
	return w0 == LE8('t', 'r', 'a', 'n', 's', 'f', 'e', 'r') &&
	       w1 == LE8('-', 'e', 'n', 'c', 'o', 'd', 'i', 'n') &&
	       (w2 & 0xffff) == LE8('g', ':', 0, 0, 0, 0, 0, 0);
}

/*
 * One byte per call, as scan_request_byte: the end of each header line, and each line's name. Only a
 * yes/no is kept from one byte to the next: the verifier checks the loop's body until its state repeats,
 * and a position carried along would never repeat.
 */
static long scan_head_byte(__u32 i, void *ctx)
{
	struct head_scan *h = ctx;
	__u32 at = h->from + i;
	__u8 c;

	if (at >= h->n)
		return 1; /* the head does not end in this segment */
	c = h->s->req[at & (REQ_BUF - 1)];
	if (c == '\n') {
		if (h->at_start) {
			h->end = at + 1;
			return 1;
		}
		h->at_start = 1;
		return 0;
	}
	if (!h->at_start || c == '\r')
		return 0;
	h->at_start = 0;
	if (announces_body(h->s->req, at)) {
		h->body = 1;
		return 1;
	}
	return 0;
}

/**
 * request_stays() - whether the payload is one whole request without a body (no Content-Length or
 * Transfer-Encoding header: RFC 9112, 6.3) for content @node holds: the node serving the connection
 * answers it, and the next request starts right after this segment. Anything else (a head over several
 * segments, pipelined requests, a body, a path the map is unsure of) is for user space.
 */
__attribute__((noinline)) int request_stays(struct __sk_buff *skb, __u32 off, __u32 len, __u32 node)
{
	const struct baton_content *c;
	struct head_scan h = {};
	__u32 line_end = 0;

	if (!skb || node >= 64 || len > REQ_BUF)
		return 0;
	c = read_request_line(skb, off, len, &line_end);
	if (!c || (c->flags & BATON_CONTENT_UNSURE) || !((c->holders >> node) & 1))
		return 0;
	h.s = scratch();
	if (!h.s)
		return 0;
	h.from = line_end;
	h.n = len;
	h.at_start = 0; /* inside the request line: its end is no empty line */
	bpf_loop(REQ_BUF, scan_head_byte, &h, 0);
	return !h.body && h.end == len;
}

#endif /* BATON_HTTP_H */
