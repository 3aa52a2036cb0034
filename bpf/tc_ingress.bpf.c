// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * tc clsact ingress on the service interface.
 *   Front end: a handed-off flow's client packets are translated (destination, ack, SACK, TSecr) and
 *   redirected to the back end; SYNs and packets of flows being decided are marked for batond (iptables
 *   queues marked packets to NFQUEUE); everything else passes untouched.
 *   Back end: forwarded client packets of a replayed connection pass to the stack; FIN/RST are tracked
 *   so that batond learns when the flow is over.
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

#include "baton_abi.h"
#include "lib/close.h"
#include "lib/maps.h"
#include "lib/parse.h"
#include "lib/rewrite.h"

#ifndef AF_INET
#define AF_INET 2
#endif

static __always_inline int mark_slow(struct __sk_buff *skb)
{
	skb->mark |= BATON_SLOW_MARK;
	count(BATON_CNT_FE_SLOW, 1);
	return TC_ACT_OK;
}

static __always_inline int forward(struct __sk_buff *skb, struct pkt *p, struct baton_fe_flow *f)
{
	struct bpf_redir_neigh nh = {};
	struct baton_xlate x = f->xlate;
	long rc;

	f->last_ns = bpf_ktime_get_ns();
	f->packets++;
	if (rewrite_client_to_backend(skb, p, &x)) {
		count(BATON_CNT_DROP_MALFORMED, 1);
		return TC_ACT_SHOT;
	}
	count(BATON_CNT_FE_FORWARDED, 1);
	count(BATON_CNT_FE_FORWARDED_BYTES, skb->len);
	nh.nh_family = AF_INET;
	nh.ipv4_nh = x.backend_addr;
	rc = bpf_redirect_neigh(skb->ifindex, &nh, sizeof(nh), 0);
	if (rc != TC_ACT_REDIRECT) {
		/* The translated packet is addressed to the back end: the stack can still forward it. */
		count(BATON_CNT_REDIRECT_FAILED, 1);
		return TC_ACT_OK;
	}
	return rc;
}

SEC("tc")
int baton_ingress(struct __sk_buff *skb)
{
	struct baton_flow_key key = {};
	struct baton_fe_flow *fe;
	struct baton_be_flow *be;
	struct pkt p = {};
	int rc = parse_packet(skb, &p);

	if (rc == PARSE_NOT_TCP)
		return TC_ACT_OK;
	if (rc == PARSE_MALFORMED) {
		/* Not ours to judge, unless it claims to be for our service: then the stack drops it anyway.
		 */
		return TC_ACT_OK;
	}
	if (p.daddr != cfg_service_addr || p.dport != cfg_service_port)
		return TC_ACT_OK;

	key.saddr = p.saddr;
	key.daddr = p.daddr;
	key.sport = p.sport;
	key.dport = p.dport;

	fe = bpf_map_lookup_elem(&baton_fe_flows, &key);
	if (fe) {
		if (fe->state == BATON_FE_FORWARD &&
		    !((p.flags & TCP_FLAG_SYN_BIT) && !(p.flags & TCP_FLAG_ACK_BIT)))
			return forward(skb, &p, fe);
		if ((p.flags & TCP_FLAG_ACK_BIT) && !(fe->flags & BATON_FE_CLIENT_ACKED))
			__sync_fetch_and_or(&fe->flags, BATON_FE_CLIENT_ACKED);
		return mark_slow(skb);
	}
	be = bpf_map_lookup_elem(&baton_be_flows, &key);
	if (be) {
		be->last_ns = bpf_ktime_get_ns();
		be->packets++;
		count(BATON_CNT_BE_CLIENT_SEEN, 1);
		track_client(be, &p);
		report_if_closed(be, &key);
		return TC_ACT_OK;
	}
	if ((p.flags & TCP_FLAG_SYN_BIT) && !(p.flags & TCP_FLAG_ACK_BIT))
		return mark_slow(skb);
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
