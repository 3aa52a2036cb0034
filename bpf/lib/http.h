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

#define REQ_SCAN 256 /* bytes of the segment examined: a longer request line goes to user space */

/* Per-CPU room for what does not fit on the BPF stack. Only ingress uses it: not pinned. */
struct baton_scratch {
	__u8 req[REQ_SCAN];
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
	c = r->s->req[i & (REQ_SCAN - 1)];
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
		if (b[(at + i) & (REQ_SCAN - 1)] != want[i])
			return 0;
	}
	i = b[(at + 8) & (REQ_SCAN - 1)];
	if (i < '0' || i > '9')
		return 0;
	i = b[(at + 9) & (REQ_SCAN - 1)];
	return i == '\r' || i == '\n';
}

/**
 * request_content() - the content map's entry for the request starting the payload of @p, or NULL when
 * the kernel cannot tell (not a whole, plain request line in this segment).
 */
static __always_inline const struct baton_content *request_content(struct __sk_buff *skb, const struct pkt *p)
{
	struct baton_scratch *s = scratch();
	struct req_scan r = {};
	__u32 n = p->payload_len;

	if (!s)
		return 0;
	if (n > REQ_SCAN)
		n = REQ_SCAN;
	if (n < 16) /* "GET / HTTP/1.1\r\n" */
		return 0;
	if (bpf_skb_load_bytes(skb, p->tcp_off + p->tcp_hdr_len, s->req, n))
		return 0;
	r.s = s;
	r.n = n;
	bpf_loop(REQ_SCAN, scan_request_byte, &r, 0);
	if (r.bad || !r.target_end || r.target_end + 10 > n || !is_version(s->req, r.target_end))
		return 0;
	s->key.prefixlen = 8 * (r.path_len < BATON_PATH_MAX ? r.path_len : BATON_PATH_MAX);
	return bpf_map_lookup_elem(&baton_content, &s->key);
}

/* Whether this node serves the request at the start of @p itself, for certain. */
static __always_inline int request_is_local(struct __sk_buff *skb, const struct pkt *p)
{
	const struct baton_content *c = request_content(skb, p);

	return c && (c->flags & BATON_CONTENT_LOCAL) && !(c->flags & BATON_CONTENT_UNSURE);
}

#endif /* BATON_HTTP_H */
