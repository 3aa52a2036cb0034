/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Header parsing for tc programs: Ethernet, IPv4, TCP and its options, into offsets and values. */
#ifndef BATON_PARSE_H
#define BATON_PARSE_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/tcp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#define TCPOPT_EOL	 0
#define TCPOPT_NOP	 1
#define TCPOPT_MSS	 2
#define TCPOPT_WSCALE	 3
#define TCPOPT_SACK_PERM 4
#define TCPOPT_SACK	 5
#define TCPOPT_TIMESTAMP 8

#define TCP_FLAG_FIN_BIT 0x01
#define TCP_FLAG_SYN_BIT 0x02
#define TCP_FLAG_RST_BIT 0x04
#define TCP_FLAG_ACK_BIT 0x10

/*
 * skb->data and skb->data_end, loaded from the context itself every time. Read plainly, the compiler may
 * keep &skb->data in a register across helper calls and load through it later, which the verifier
 * refuses ("dereference of modified ctx ptr").
 */
#define SKB_CTX_LOAD(skb, field)                                                                             \
	({                                                                                                   \
		void *__v;                                                                                   \
		asm volatile("%0 = *(u32 *)(%1 + %2)"                                                        \
			     : "=r"(__v)                                                                     \
			     : "r"(skb), "i"(__builtin_offsetof(struct __sk_buff, field)));                  \
		__v;                                                                                         \
	})
#define skb_data(skb)	  SKB_CTX_LOAD(skb, data)
#define skb_data_end(skb) SKB_CTX_LOAD(skb, data_end)

/* What the programs need to know about one packet. Offsets are from skb->data (the Ethernet header). */
struct pkt {
	__u32 ip_off;
	__u32 tcp_off;
	__u32 tcp_hdr_len;
	__u32 payload_len; /* from the IP total length: for a GSO packet, all of its segments */
	__u32 saddr;	   /* network order */
	__u32 daddr;
	__u16 sport; /* network order */
	__u16 dport;
	__u32 seq; /* host order */
	__u32 ack;
	__u16 window;
	__u8 flags;
	__u8 sack_permitted;
	__u32 ts_off; /* absolute offset of TSval, 0 when absent; TSecr follows */
	__u32 tsval;
	__u32 tsecr;
	__u32 sack_off; /* absolute offset of the first SACK block, 0 when absent */
	__u32 sack_blocks;
	__u16 mss;
	__u8 wscale; /* 0xff when absent */
	__u8 pad;
};

enum parse_result {
	PARSE_OK = 0,
	PARSE_NOT_TCP = 1,   /* not IPv4/TCP, or a fragment: not ours */
	PARSE_MALFORMED = 2, /* TCP whose headers or options do not hold together */
};

/* State of one walk over the option area, copied to the stack first (see parse_tcp_options). */
struct opt_walk {
	__u8 buf[64];
	__u32 off;  /* next option, relative to buf */
	__u32 len;  /* bytes of options */
	__u32 base; /* absolute offset of buf[0] */
	__u32 ts_off;
	__u32 tsval;
	__u32 tsecr;
	__u32 sack_off;
	__u32 sack_blocks;
	__u16 mss;
	__u8 wscale;
	__u8 sack_permitted;
	__u8 malformed;
};

static __always_inline __u32 buf_be32(const __u8 *b, __u32 i)
{
	return ((__u32)b[i & 63] << 24) | ((__u32)b[(i + 1) & 63] << 16) | ((__u32)b[(i + 2) & 63] << 8) |
	       b[(i + 3) & 63];
}

/* One option per call (bpf_loop): the verifier checks this body once, not once per iteration. */
static long parse_one_option(__u32 index, void *ctx)
{
	struct opt_walk *w = ctx;
	__u32 off = w->off;
	__u8 kind, len;

	if (off >= w->len || off >= 40)
		return 1;
	kind = w->buf[off & 63];
	if (kind == TCPOPT_EOL)
		return 1;
	if (kind == TCPOPT_NOP) {
		w->off = off + 1;
		return 0;
	}
	if (off + 1 >= w->len) {
		w->malformed = 1;
		return 1;
	}
	len = w->buf[(off + 1) & 63];
	if (len < 2 || off + len > w->len) {
		w->malformed = 1;
		return 1;
	}
	/* Options of a fixed size with another length are malformed, as core/packet.cpp has it. */
	if ((kind == TCPOPT_MSS && len != 4) || (kind == TCPOPT_WSCALE && len != 3) ||
	    (kind == TCPOPT_SACK_PERM && len != 2) || (kind == TCPOPT_TIMESTAMP && len != 10)) {
		w->malformed = 1;
		return 1;
	}
	if (kind == TCPOPT_MSS) {
		w->mss = ((__u16)w->buf[(off + 2) & 63] << 8) | w->buf[(off + 3) & 63];
	} else if (kind == TCPOPT_WSCALE) {
		w->wscale = w->buf[(off + 2) & 63];
	} else if (kind == TCPOPT_SACK_PERM) {
		w->sack_permitted = 1;
	} else if (kind == TCPOPT_TIMESTAMP) {
		w->ts_off = w->base + off + 2;
		w->tsval = buf_be32(w->buf, off + 2);
		w->tsecr = buf_be32(w->buf, off + 6);
	} else if (kind == TCPOPT_SACK) {
		if (len < 10 || len > 34 || (len - 2) % 8) {
			w->malformed = 1;
			return 1;
		}
		w->sack_off = w->base + off + 2;
		w->sack_blocks = (len - 2) / 8;
	}
	w->off = off + len;
	return 0;
}

/**
 * parse_tcp_options() - walk the option area (at most 40 bytes, so at most 40 options).
 * The options are copied to the stack and walked with bpf_loop: no packet-pointer range tracking per
 * option, which keeps the verifier's work linear.
 */
static __always_inline int parse_tcp_options(struct __sk_buff *skb, struct pkt *p)
{
	struct opt_walk w = {};
	__u32 len = p->tcp_hdr_len - 20;

	p->wscale = 0xff;
	if (len == 0)
		return PARSE_OK;
	if (len > 40)
		return PARSE_MALFORMED;
	if (bpf_skb_load_bytes(skb, p->tcp_off + 20, w.buf, len & 63))
		return PARSE_MALFORMED;
	/* The layout Linux puts on every segment once timestamps are on (RFC 7323, appendix A): the
	 * same result as the walk below, without it. */
	if (len == 12 && w.buf[0] == TCPOPT_NOP && w.buf[1] == TCPOPT_NOP && w.buf[2] == TCPOPT_TIMESTAMP &&
	    w.buf[3] == 10) {
		p->ts_off = p->tcp_off + 24;
		p->tsval = buf_be32(w.buf, 4);
		p->tsecr = buf_be32(w.buf, 8);
		return PARSE_OK;
	}
	w.len = len;
	w.base = p->tcp_off + 20;
	w.wscale = 0xff;
	bpf_loop(40, parse_one_option, &w, 0);
	if (w.malformed)
		return PARSE_MALFORMED;
	p->ts_off = w.ts_off;
	p->tsval = w.tsval;
	p->tsecr = w.tsecr;
	p->sack_off = w.sack_off;
	p->sack_blocks = w.sack_blocks;
	p->mss = w.mss;
	p->wscale = w.wscale;
	p->sack_permitted = w.sack_permitted;
	return PARSE_OK;
}

/**
 * parse_packet() - Ethernet + IPv4 + TCP into @p.
 * Uses direct packet access; callers must re-read through helpers after any helper that changes the
 * packet (every pointer into it is invalid then).
 */
static __always_inline int parse_packet(struct __sk_buff *skb, struct pkt *p)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip;
	struct tcphdr *tcp;
	__u32 ihl, doff, tot_len;

	if ((void *)(eth + 1) > data_end)
		return PARSE_NOT_TCP;
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return PARSE_NOT_TCP;
	ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > data_end)
		return PARSE_NOT_TCP;
	if (ip->version != 4 || ip->protocol != IPPROTO_TCP)
		return PARSE_NOT_TCP;
	if (ip->frag_off & bpf_htons(0x3fff))
		return PARSE_NOT_TCP;
	ihl = ip->ihl * 4;
	if (ihl < 20)
		return PARSE_MALFORMED;
	tot_len = bpf_ntohs(ip->tot_len);
	p->ip_off = sizeof(*eth);
	p->tcp_off = sizeof(*eth) + ihl;
	tcp = data + (p->tcp_off & 0x7f);
	if ((void *)(tcp + 1) > data_end)
		return PARSE_MALFORMED;
	/* A GSO packet's IP total length is 0 on some paths; only then trust the skb length. */
	if (tot_len == 0)
		tot_len = skb->len - sizeof(*eth);
	/* A packet shorter than its IP header says is cut: malformed, as core/packet.cpp has it. */
	if (tot_len < ihl + 20 || tot_len > skb->len - sizeof(*eth))
		return PARSE_MALFORMED;
	/* From here on the 4-tuple is known, also of a packet that turns out malformed (core/packet.cpp's
	 * peek_tcp reads it under the same conditions): a flow's own malformed packets can be told. */
	p->saddr = ip->saddr;
	p->daddr = ip->daddr;
	p->sport = tcp->source;
	p->dport = tcp->dest;
	doff = tcp->doff * 4;
	if (doff < 20 || ihl + doff > tot_len)
		return PARSE_MALFORMED;
	p->tcp_hdr_len = doff;
	p->payload_len = tot_len - ihl - doff;
	p->seq = bpf_ntohl(tcp->seq);
	p->ack = bpf_ntohl(tcp->ack_seq);
	p->window = bpf_ntohs(tcp->window);
	p->flags = ((__u8 *)tcp)[13];
	return parse_tcp_options(skb, p);
}

#endif /* BATON_PARSE_H */
