// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * tc clsact egress on the service interface.
 *   Front end: the stack's SYN/ACK to a triaged flow is recorded in its triage entry, to a watched flow
 *   reported to batond (ISN1, options granted), and sent; after a handoff, the stack's SYN/ACK
 * retransmissions are dropped (the client hears only the back end from then on). Back end: the stack's
 * SYN/ACK to a replayed SYN is captured (reported, never sent); a reset from the stack means nothing listens,
 * a bare ACK that an old TIME_WAIT holds the 4-tuple (both reported, dropped); established replies are
 * translated (source, seq, TSval, window) and go straight to the client; FIN/RST are tracked.
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

#include "baton_abi.h"
#include "lib/close.h"
#include "lib/maps.h"
#include "lib/parse.h"
#include "lib/rewrite.h"

static __always_inline void report_synack(__u32 type, const struct baton_flow_key *key, const struct pkt *p)
{
	struct baton_event ev = {};

	ev.type = type;
	ev.key = *key;
	ev.seq = p->seq;
	ev.ack = p->ack;
	ev.tsval = p->tsval;
	ev.has_timestamp = p->ts_off ? 1 : 0;
	ev.wscale = p->wscale;
	ev.mss = p->mss;
	ev.sack_permitted = p->sack_permitted;
	ev.window = p->window;
	emit(&ev);
}

/* The stack's SYN/ACK to a connection tc triages: what batond needs should it take the flow over. */
static __always_inline int triage_synack(struct baton_fe_triage *t, const struct pkt *p)
{
	if (t->flags & BATON_TRIAGE_CLIENT_ACKED) {
		/* A retransmission after the client's ACK (absorbed): see the same case below. */
		return drop(BATON_DROP_SYNACK_REPEAT);
	}
	t->isn1 = p->seq;
	t->tsval = p->tsval;
	t->has_timestamp = p->ts_off ? 1 : 0;
	t->wscale = p->wscale;
	t->mss = p->mss;
	t->sack_permitted = p->sack_permitted;
	t->window = p->window;
	/* Fields before the flag: ingress reads them once it sees the flag. */
	__sync_fetch_and_or(&t->flags, BATON_TRIAGE_SYNACK_SEEN);
	count(BATON_CNT_FE_SYNACK_SEEN, 1);
	return TC_ACT_OK;
}

SEC("tc")
int baton_egress(struct __sk_buff *skb)
{
	struct baton_flow_key key = {};
	struct baton_fe_flow *fe;
	struct baton_be_flow *be;
	struct baton_fe_triage *t;
	struct pkt p = {};
	int synack;
	int err;
	int rc = parse_packet(skb, &p);

	if (rc != PARSE_OK)
		return TC_ACT_OK;
	if (p.saddr != cfg_service_addr || p.sport != cfg_service_port)
		return TC_ACT_OK;
	if (skb->mark & BATON_DONE_MARK)
		return TC_ACT_OK; /* batond translated it already (NFQUEUE fallback) */

	/* Keys name the client -> server direction. */
	key.saddr = p.daddr;
	key.daddr = p.saddr;
	key.sport = p.dport;
	key.dport = p.sport;
	synack = (p.flags & (TCP_FLAG_SYN_BIT | TCP_FLAG_ACK_BIT)) == (TCP_FLAG_SYN_BIT | TCP_FLAG_ACK_BIT);

	be = bpf_map_lookup_elem(&baton_be_flows, &key);
	/* A SYN/ACK is a replayed connection's only while it is captured; after that, it answers a new
	 * connection on the tuple (this node serves its own front end's flows too: a new connection from a
	 * client port whose last one here still lingers), which the front-end checks below must see. */
	if (be && synack && be->state != BATON_BE_CAPTURE)
		be = NULL;
	if (be) {
		struct baton_xlate x;

		if (be->state == BATON_BE_CAPTURE) {
			if (synack) {
				report_synack(BATON_EV_BE_SYNACK, &key, &p);
				count(BATON_CNT_BE_SYNACK_CAPTURED, 1);
			} else if ((p.flags & TCP_FLAG_RST_BIT) && p.seq == 0) {
				/* The stack's reset of our SYN (no ACK in it, so sequence number 0, RFC 793):
				 * nothing listens. A reset with another number is an earlier socket's on the
				 * tuple. */
				struct baton_event ev = {};

				ev.type = BATON_EV_BE_REFUSED;
				ev.key = key;
				emit(&ev);
			} else if ((p.flags & TCP_FLAG_ACK_BIT) && !(p.flags & TCP_FLAG_RST_BIT)) {
				struct baton_event ev = {};

				ev.type = BATON_EV_BE_BLOCKED;
				ev.key = key;
				ev.seq = p.seq;
				ev.ack = p.ack;
				emit(&ev);
			}
			/* Before the flow is established nothing of it may reach the client. */
			return drop(BATON_DROP_CAPTURED);
		}
		if (be->state == BATON_BE_SILENT) {
			/* The flow is moving on: its web server's FIN or window update must not reach the
			 * client, and the kernel's reset when batond lets the socket go neither. */
			return drop(BATON_DROP_SILENCED);
		}
		be->last_ns = bpf_ktime_get_ns();
		be->packets++;
		track_server(be, &p);
		x = be->xlate;
		err = rewrite_backend_to_client(skb, &p, &x);
		if (err)
			return drop(-err);
		count(BATON_CNT_BE_REWRITTEN, 1);
		count(BATON_CNT_BE_REWRITTEN_BYTES, skb->len);
		report_if_closed(be, &key);
		return TC_ACT_OK;
	}

	if (synack) {
		t = bpf_map_lookup_elem(&baton_fe_triage, &key);
		if (t && p.ack == t->client_isn + 1)
			return triage_synack(t, &p);
		fe = bpf_map_lookup_elem(&baton_fe_flows, &key);
		if (fe && !(fe->gate & BATON_GATE_OPEN) && !(fe->flags & BATON_FE_CLIENT_ACKED)) {
			report_synack(BATON_EV_FE_SYNACK, &key, &p);
			count(BATON_CNT_FE_SYNACK_SEEN, 1);
		} else if (fe) {
			/* A retransmission after the client's ACK (which we hold, so our stack still waits
			 * for it): the client is established and needs none; one with a later TSval would
			 * only move the client's timestamp view ahead of what the back end will send. */
			return drop(BATON_DROP_SYNACK_REPEAT);
		}
	}
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
