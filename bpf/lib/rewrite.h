/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Field rewrites with incremental checksum updates, mirroring core/packet.cpp + core/translate.cpp byte
 * for byte (the differential test holds them to that).
 *
 * Checksum side effects: every helper here keeps the IPv4 and TCP checksums valid for CHECKSUM_NONE and
 * CHECKSUM_COMPLETE packets; for CHECKSUM_PARTIAL (locally sent, offloaded) the kernel updates only the
 * pseudo-header part, which is right since the rest is summed at transmit. Packet pointers are invalid
 * after any of them.
 */
#ifndef BATON_REWRITE_H
#define BATON_REWRITE_H

#include "../baton_abi.h"
#include "parse.h"

#define TCP_CSUM_OFF 16

static __always_inline __u16 csum16_add(__u16 a, __u16 b)
{
	__u32 s = (__u32)a + b;

	return (__u16)((s & 0xffff) + (s >> 16));
}

/* Stops the compiler from dropping a bounds check that the verifier needs to see. */
#define baton_barrier_var(var) asm volatile("" : "+r"(var))

/**
 * store_tcp_bytes() - write @len (2 or 4) bytes at absolute offset @off inside the TCP header and fix
 * the checksum. @wire holds the bytes in packet order in its lowest-addressed bytes (a value already in
 * network order). The update is computed over the smallest 16-bit aligned window (relative to the TCP
 * header) around the field, so fields at odd offsets (options after a lone NOP) come out right.
 * Returns 0 or a negative error from the helpers. A global function: the verifier checks it once.
 */
__noinline int store_tcp_bytes(struct __sk_buff *skb, __u32 tcp_off, __u32 off, __u32 wire, __u32 len)
{
	__u8 before[8] = {};
	__u8 after[8] = {};
	__u32 shift = (off - tcp_off) & 1;
	__u32 start = off - shift;
	__u32 wlen = (len + shift + 1) & ~1u;
	__u32 avail;
	__u16 sum_before = 0, sum_after = 0;
	int i, err;

	if (len != 2 && len != 4)
		return -1;
	/* The window may reach one byte past the packet (a field ending the header at an odd offset). */
	avail = skb->len > start ? skb->len - start : 0;
	if (avail > wlen)
		avail = wlen;
	baton_barrier_var(avail);
	if (avail < 1 || avail > 6)
		return -1;
	err = bpf_skb_load_bytes(skb, start, before, avail);
	if (err)
		return err;
	for (i = 0; i < 8; i++)
		after[i] = before[i];
	/* Constant indexes keep the verifier on known stack slots. */
	for (i = 0; i < 4; i++) {
		if (i < (int)len) {
			__u8 b = (wire >> (8 * i)) & 0xff;

			if (shift)
				after[i + 1] = b;
			else
				after[i] = b;
		}
	}
	for (i = 0; i < 6; i += 2) {
		if (i < (int)wlen) {
			sum_before = csum16_add(sum_before, before[i] | (before[i + 1] << 8));
			sum_after = csum16_add(sum_after, after[i] | (after[i + 1] << 8));
		}
	}
	/* Constant sizes: the verifier wants to know how much of @wire the helper reads. */
	if (len == 4)
		err = bpf_skb_store_bytes(skb, off, &wire, 4, 0);
	else
		err = bpf_skb_store_bytes(skb, off, &wire, 2, 0);
	if (err)
		return err;
	return bpf_l4_csum_replace(skb, tcp_off + TCP_CSUM_OFF, sum_before, sum_after, 2);
}

static __always_inline int store_tcp32(struct __sk_buff *skb, __u32 tcp_off, __u32 off, __u32 host_value)
{
	return store_tcp_bytes(skb, tcp_off, off, bpf_htonl(host_value), 4);
}

static __always_inline int store_tcp16(struct __sk_buff *skb, __u32 tcp_off, __u32 off, __u16 host_value)
{
	return store_tcp_bytes(skb, tcp_off, off, bpf_htons(host_value), 2);
}

/* Replaces the IPv4 address at @field (12: source, 16: destination): both checksums change. */
static __always_inline int store_addr(struct __sk_buff *skb, const struct pkt *p, __u32 field, __u32 old_addr,
				      __u32 new_addr)
{
	int err = bpf_skb_store_bytes(skb, p->ip_off + field, &new_addr, 4, 0);

	if (err)
		return err;
	err = bpf_l3_csum_replace(skb, p->ip_off + 10, old_addr, new_addr, 4);
	if (err)
		return err;
	return bpf_l4_csum_replace(skb, p->tcp_off + TCP_CSUM_OFF, old_addr, new_addr, BPF_F_PSEUDO_HDR | 4);
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
	__u32 delta = x->isn2 - x->isn1;
	int i, err;

	err = store_addr(skb, p, 16, p->daddr, x->backend_addr);
	if (err)
		return err;
	if (p->flags & TCP_FLAG_ACK_BIT) {
		err = store_tcp32(skb, p->tcp_off, p->tcp_off + 8, p->ack + delta);
		if (err)
			return err;
	}
	for (i = 0; i < 4; i++) {
		__u32 edges[2];
		__u32 off = p->sack_off + i * 8;

		if (i >= (int)p->sack_blocks)
			break;
		err = bpf_skb_load_bytes(skb, off, edges, sizeof(edges));
		if (err)
			return err;
		err = store_tcp32(skb, p->tcp_off, off, bpf_ntohl(edges[0]) + delta);
		if (err)
			return err;
		err = store_tcp32(skb, p->tcp_off, off + 4, bpf_ntohl(edges[1]) + delta);
		if (err)
			return err;
	}
	if (x->timestamps && p->ts_off && (p->flags & TCP_FLAG_ACK_BIT)) {
		err = store_tcp32(skb, p->tcp_off, p->ts_off + 4, p->tsecr - x->ts_offset);
		if (err)
			return err;
	}
	return 0;
}

/**
 * rewrite_backend_to_client() - back end, back end -> client: source address, sequence number, TSval and
 * window (core: rewrite_backend_to_client). Fixed-size fields only: safe on GSO packets.
 */
static __always_inline int rewrite_backend_to_client(struct __sk_buff *skb, const struct pkt *p,
						     const struct baton_xlate *x)
{
	int err;

	err = store_addr(skb, p, 12, p->saddr, x->frontend_addr);
	if (err)
		return err;
	err = store_tcp32(skb, p->tcp_off, p->tcp_off + 4, p->seq + (x->isn1 - x->isn2));
	if (err)
		return err;
	if (x->timestamps && p->ts_off) {
		err = store_tcp32(skb, p->tcp_off, p->ts_off, p->tsval + x->ts_offset);
		if (err)
			return err;
	}
	if (!(p->flags & TCP_FLAG_SYN_BIT)) {
		__u16 w = rescale_window(p->window, x->backend_wscale, x->frontend_wscale);

		if (w != p->window)
			return store_tcp16(skb, p->tcp_off, p->tcp_off + 14, w);
	}
	return 0;
}

#endif /* BATON_REWRITE_H */
