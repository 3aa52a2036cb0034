/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Field rewrites with incremental checksum updates, mirroring core/packet.cpp + core/translate.cpp byte
 * for byte (the differential test holds them to that).
 *
 * How: the fields are written in place (direct packet access), their checksum deltas summed on the way
 * (RFC 1624), and the checksums updated once at the end: the IPv4 header's in place (never offloaded),
 * the TCP checksum through bpf_l4_csum_replace, twice at most: once for an address (part of the
 * pseudo-header) and once for every other field together. The helper does what the packet's checksum
 * state needs: for CHECKSUM_PARTIAL (locally sent, offloaded) it changes only the pseudo-header part,
 * since the rest is summed at transmit. Fixed-size fields only: safe on GSO packets. One helper call
 * per field, as before, cost about 40 ns each (BPF_PROG_TEST_RUN).
 *
 * Packet pointers are invalid after these functions. They return 0, or a negative enum baton_drop_reason
 * (the packet is then half rewritten: drop it).
 */
#ifndef BATON_REWRITE_H
#define BATON_REWRITE_H

#include "../baton_abi.h"
#include "parse.h"

#define TCP_CSUM_OFF 16

/* One's-complement addition of 32-bit words (the checksum's arithmetic, folded to 16 bits at the end). */
static __always_inline __u32 csum_add32(__u32 a, __u32 b)
{
	__u32 s = a + b;

	return s + (s < b);
}

static __always_inline __u32 csum_fold16(__u32 s)
{
	s = (s & 0xffff) + (s >> 16);
	return (s & 0xffff) + (s >> 16);
}

/*
 * The checksum delta of a field that changes from @old to @new (both as they lie in the packet, loaded
 * as they are): ~old + new, folded. A field at an odd offset from the start of the TCP header (an option
 * after a lone NOP) straddles the checksum's 16-bit words: its delta is the aligned one with its two
 * bytes swapped (one's-complement sums do not depend on byte order, RFC 1071).
 */
static __always_inline __u32 field_delta(__u32 old, __u32 new, __u32 odd)
{
	__u32 d = csum_fold16(csum_add32(~old, new));

	return odd ? ((d & 0xff) << 8) | (d >> 8) : d;
}

static __always_inline __u32 field_delta16(__u16 old, __u16 new)
{
	return csum_fold16((__u32)(__u16)~old + new);
}

/* What a rewrite changed in the TCP checksum: an address (pseudo-header) and the rest. */
struct csum_edit {
	__u32 addr_old; /* network order; equal to addr_new when the address did not change */
	__u32 addr_new;
	__u32 delta; /* the other fields', folded deltas summed */
};

/*
 * Points at the IPv4 and TCP headers (whole, options included) for direct access, pulling them into the
 * linear area first if they are not there. Returns 0, or -BATON_DROP_REWRITE when they cannot be.
 */
static __always_inline int headers_of(struct __sk_buff *skb, const struct pkt *p, struct iphdr **ip,
				      struct tcphdr **tcp)
{
	__u32 end = (p->tcp_off + p->tcp_hdr_len) & 0xff;
	void *data = skb_data(skb);
	void *data_end = skb_data_end(skb);

	if (data + end > data_end) {
		if (bpf_skb_pull_data(skb, end))
			return -BATON_DROP_REWRITE;
		data = skb_data(skb);
		data_end = skb_data_end(skb);
		if (data + end > data_end)
			return -BATON_DROP_REWRITE;
	}
	*ip = data + (p->ip_off & 0x7f);
	*tcp = data + (p->tcp_off & 0x7f);
	if ((void *)(*ip + 1) > data_end || (void *)(*tcp + 1) > data_end)
		return -BATON_DROP_REWRITE;
	return 0;
}

/* The 32-bit field at absolute offset @off, inside the TCP header (checked by headers_of). */
static __always_inline __u32 *field32(struct __sk_buff *skb, __u32 off)
{
	void *data = skb_data(skb);
	void *data_end = skb_data_end(skb);
	__u32 *f = data + (off & 0xff);

	if ((void *)(f + 1) > data_end)
		return 0;
	return f;
}

/* Writes @v (network order) into the 32-bit field @f, @rel bytes into the TCP header; returns its delta. */
static __always_inline __u32 set_field(__u32 *f, __u32 v, __u32 rel)
{
	__u32 d = field_delta(*f, v, rel & 1);

	*f = v;
	return d;
}

/* Replaces the 32-bit TCP field at absolute offset @off with a host-order value; adds its delta to @e. */
static __always_inline int set_tcp32(struct __sk_buff *skb, const struct pkt *p, __u32 off, __u32 host_value,
				     struct csum_edit *e)
{
	__u32 *f = field32(skb, off);

	if (!f)
		return -BATON_DROP_REWRITE;
	e->delta += set_field(f, bpf_htonl(host_value), off - p->tcp_off);
	return 0;
}

/* Replaces the IPv4 address at @addr (inside @ip) and its header's checksum, in place. */
static __always_inline void set_addr(struct iphdr *ip, __u32 *addr, __u32 new_addr, struct csum_edit *e)
{
	__u32 old = *addr;

	e->addr_old = old;
	e->addr_new = new_addr;
	*addr = new_addr;
	ip->check = (__u16)~csum_fold16(csum_add32((__u16)~ip->check, field_delta(old, new_addr, 0)));
}

/* The TCP checksum, once per kind of change (packet pointers are invalid afterwards). */
static __always_inline int commit_tcp_csum(struct __sk_buff *skb, const struct pkt *p,
					   const struct csum_edit *e)
{
	__u32 off = p->tcp_off + TCP_CSUM_OFF;

	if (e->addr_old != e->addr_new &&
	    bpf_l4_csum_replace(skb, off, e->addr_old, e->addr_new, BPF_F_PSEUDO_HDR | 4))
		return -BATON_DROP_REWRITE;
	if (csum_fold16(e->delta) && bpf_l4_csum_replace(skb, off, 0, csum_fold16(e->delta), 0))
		return -BATON_DROP_REWRITE;
	return 0;
}

/* Same rule as core/translate.cpp rescale_window(). */
static __always_inline __u16 rescale_window(__u16 field, __u8 backend_wscale, __u8 frontend_wscale)
{
	__u64 bytes, scaled;

	if (backend_wscale == frontend_wscale)
		return field;
	bytes = (__u64)field << (backend_wscale & 15);
	scaled = bytes >> (frontend_wscale & 15);
	if (scaled == 0 && bytes != 0)
		scaled = 1;
	return scaled > 0xffff ? 0xffff : (__u16)scaled;
}

/**
 * rewrite_client_to_backend() - front end, client -> back end: destination address, ack number, SACK
 * edges and TSecr (core: rewrite_client_to_backend).
 */
static __always_inline int rewrite_client_to_backend(struct __sk_buff *skb, const struct pkt *p,
						     const struct baton_xlate *x)
{
	struct csum_edit e = {};
	struct iphdr *ip;
	struct tcphdr *tcp;
	__u32 delta = x->isn2 - x->isn1;
	int i;

	if (headers_of(skb, p, &ip, &tcp))
		return -BATON_DROP_REWRITE;
	set_addr(ip, &ip->daddr, x->backend_addr, &e);
	if (p->flags & TCP_FLAG_ACK_BIT)
		e.delta += set_field(&tcp->ack_seq, bpf_htonl(p->ack + delta), 0);
	for (i = 0; i < 8; i++) {
		__u32 *edge;

		if (i >= (int)p->sack_blocks * 2)
			break;
		edge = field32(skb, p->sack_off + i * 4);
		if (!edge)
			return -BATON_DROP_REWRITE;
		e.delta += set_field(edge, bpf_htonl(bpf_ntohl(*edge) + delta), p->sack_off - p->tcp_off);
	}
	if (x->timestamps && p->ts_off && (p->flags & TCP_FLAG_ACK_BIT)) {
		if (set_tcp32(skb, p, p->ts_off + 4, p->tsecr - x->ts_offset, &e))
			return -BATON_DROP_REWRITE;
	}
	return commit_tcp_csum(skb, p, &e);
}

/**
 * rewrite_backend_to_client() - back end, back end -> client: source address, sequence number, TSval and
 * window (core: rewrite_backend_to_client).
 */
static __always_inline int rewrite_backend_to_client(struct __sk_buff *skb, const struct pkt *p,
						     const struct baton_xlate *x)
{
	struct csum_edit e = {};
	struct iphdr *ip;
	struct tcphdr *tcp;

	if (headers_of(skb, p, &ip, &tcp))
		return -BATON_DROP_REWRITE;
	set_addr(ip, &ip->saddr, x->frontend_addr, &e);
	e.delta += set_field(&tcp->seq, bpf_htonl(p->seq + (x->isn1 - x->isn2)), 4);
	if (!(p->flags & TCP_FLAG_SYN_BIT)) {
		__u16 w = bpf_htons(rescale_window(p->window, x->backend_wscale, x->frontend_wscale));

		if (w != tcp->window) {
			e.delta += field_delta16(tcp->window, w);
			tcp->window = w;
		}
	}
	if (x->timestamps && p->ts_off) {
		if (set_tcp32(skb, p, p->ts_off, p->tsval + x->ts_offset, &e))
			return -BATON_DROP_REWRITE;
	}
	return commit_tcp_csum(skb, p, &e);
}

#endif /* BATON_REWRITE_H */
