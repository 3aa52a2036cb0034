// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * tc clsact ingress on the service interface.
 *   Front end: a new connection is triaged here (its SYN recorded, its bare handshake ACK absorbed, the
 *   request line of its first segment matched against the content map): local content goes to the stack
 *   untouched, everything else to batond. Packets of flows batond decides are marked for it (iptables
 *   queues marked packets to NFQUEUE); a handed-off flow's client packets are translated (destination,
 *   ack, SACK, TSecr) and redirected to the back end; everything else passes untouched.
 *   Back end: forwarded client packets of a replayed connection pass to the stack; FIN/RST are tracked
 *   so that batond learns when the flow is over.
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

#include "baton_abi.h"
#include "lib/close.h"
#include "lib/http.h"
#include "lib/maps.h"
#include "lib/parse.h"
#include "lib/rewrite.h"

#ifndef AF_INET
#define AF_INET 2
#endif

static __always_inline int mark_slow(struct __sk_buff *skb, __u32 extra)
{
	skb->mark |= BATON_SLOW_MARK | extra;
	count(BATON_CNT_FE_SLOW, 1);
	return TC_ACT_OK;
}

/**
 * to_own_stack() - a translated client packet of a flow this node serves itself (a move brought the
 * connection back to it, replayed into its own stack): the stack gets it here, and the flow's back-end
 * half tracks its close, as tc ingress does on any back end.
 */
static __always_inline int to_own_stack(struct pkt *p, const struct baton_flow_key *key,
					const struct baton_xlate *x)
{
	struct baton_be_flow *be = bpf_map_lookup_elem(&baton_be_flows, key);

	count(BATON_CNT_FE_OWN_STACK, 1);
	if (!be)
		return TC_ACT_OK;
	p->ack += x->isn2 - x->isn1; /* as the stack sees it: back-end sequence space */
	be->last_ns = bpf_ktime_get_ns();
	be->packets++;
	track_client(be, p);
	report_if_closed(be, key);
	return TC_ACT_OK;
}

static __always_inline int forward(struct __sk_buff *skb, struct pkt *p, const struct baton_flow_key *key,
				   struct baton_fe_flow *f)
{
	struct bpf_redir_neigh nh = {};
	struct baton_xlate x = f->xlate;
	long rc;
	int err;

	f->last_ns = bpf_ktime_get_ns();
	f->packets++;
	err = rewrite_client_to_backend(skb, p, &x);
	if (err)
		return drop(-err);
	if (x.backend_addr == cfg_service_addr)
		return to_own_stack(p, key, &x);
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

/*
 * tc forgets a front-end flow (both entries) and reports it as @event_type to batond, which forgets its
 * half. The event first: batond reads the ring buffer before each queued packet, so it has forgotten the
 * flow before any later packet on the tuple (a new connection's request) reaches it.
 */
static __always_inline void forget_frontend_flow(const struct baton_flow_key *key, __u32 event_type,
						 __u32 counter)
{
	struct baton_event ev = {};

	ev.type = event_type;
	ev.key = *key;
	emit(&ev);
	bpf_map_delete_elem(&baton_fe_flows, key);
	bpf_map_delete_elem(&baton_fe_handoffs, key);
	count(counter, 1);
}

enum gate_result {
	GATE_CLOSED = 0,
	GATE_OPEN = 1,	   /* tc translates and redirects the flow from now on */
	GATE_RELEASED = 2, /* served locally and drained: the stack has the flow, tc forgot it */
};

/**
 * gate_try_open() - take a front-end flow over from batond (see baton_fe_flow.gate): only once batond
 * has decided it and given a verdict to every packet counted in @gate.
 */
static __always_inline int gate_try_open(struct baton_fe_flow *f, const struct baton_flow_key *key,
					 __u32 gate)
{
	struct baton_fe_handoff *h = bpf_map_lookup_elem(&baton_fe_handoffs, key);
	__u32 seen;

	if (!h || h->released != gate)
		return GATE_CLOSED;
	if (h->flags & BATON_HANDOFF_LOCAL) {
		/* Everything batond held went to the stack before this packet: so do the rest, untouched. */
		forget_frontend_flow(key, BATON_EV_FE_RELEASED, BATON_CNT_FE_RELEASED);
		return GATE_RELEASED;
	}
	/* The translation (and where the next request starts) before the open bit: whoever sees the gate
	 * open reads it, and the exchange below is a full barrier. Two CPUs opening at once write the same
	 * bytes. */
	f->xlate = h->xlate;
	f->next_request = h->next_request;
	f->watch_node = h->watch_node;
	seen = __sync_val_compare_and_swap(&f->gate, gate, gate | BATON_GATE_OPEN);
	if (seen == gate) {
		count(BATON_CNT_FE_GATE_OPENED, 1);
		return GATE_OPEN;
	}
	return (seen & BATON_GATE_OPEN) ? GATE_OPEN : GATE_CLOSED;
}

enum boundary_position {
	BOUNDARY_NONE = 0, /* no data, or all of it before the boundary (a retransmission) */
	BOUNDARY_AT = 1,   /* the segment starts the next request */
	BOUNDARY_LOST =
		2, /* past it (the segment that starts the request was lost on the way here) or across
		    * it (a retransmission merged with new bytes): where requests start is no longer known */
};

/* Where a client segment stands against the next request's start (client sequence space). */
static __always_inline int boundary_position(const struct pkt *p, __u32 next_request)
{
	__s32 ahead = (__s32)(p->seq - next_request);

	if (!p->payload_len || (ahead < 0 && (__s32)(p->seq + p->payload_len - next_request) <= 0))
		return BOUNDARY_NONE;
	return ahead == 0 ? BOUNDARY_AT : BOUNDARY_LOST;
}

/**
 * boundary_to_batond() - the gate is open: whether this segment, which may start the flow's next request,
 * goes to batond instead of on (see baton_fe_flow.watch_node); if so, the gate is closed at it. @gate is
 * the gate word as this packet found it (open).
 */
static __always_inline int boundary_to_batond(struct __sk_buff *skb, struct pkt *p, struct baton_fe_flow *f,
					      __u32 gate)
{
	int at;

	if (f->watch_node == BATON_WATCH_OFF || (p->flags & (TCP_FLAG_SYN_BIT | TCP_FLAG_RST_BIT)))
		return 0;
	at = boundary_position(p, f->next_request);
	/* The switch is looked up only here: most segments of a watched flow are not at a boundary. */
	if (at == BOUNDARY_NONE || !runtime_switch(BATON_RT_WATCH))
		return 0;
	if (at == BOUNDARY_LOST) {
		f->watch_node = BATON_WATCH_OFF;
		count(BATON_CNT_FE_WATCH_LOST, 1);
		return 0;
	}
	if (request_stays(skb, p->tcp_off + p->tcp_hdr_len, p->payload_len, f->watch_node)) {
		f->next_request = p->seq + p->payload_len;
		count(BATON_CNT_FE_REQUEST_KERNEL, 1);
		return 0;
	}
	/* batond decides this request: the gate closes, counting this segment as the first batond has. It
	 * reopens once batond has given every counted packet its verdict and says where the next request
	 * starts (gate_try_open). */
	if (__sync_val_compare_and_swap(&f->gate, gate, (gate & BATON_GATE_COUNT_MASK) + 1) != gate)
		return 0;
	count(BATON_CNT_FE_REQUEST_SLOW, 1);
	return 1;
}

/**
 * backend_flow_is_over() - for a bare SYN (a new connection) on the tuple of back-end flow @be: whether
 * that flow is one that ended and lingers (a client reusing its port right away: it had no TIME_WAIT,
 * the server closed first), or one this node served as its own back end. If so it is deleted: the old
 * entry must not translate, track or silence the new connection.
 */
static __always_inline int backend_flow_is_over(const struct baton_flow_key *key,
						const struct baton_be_flow *be)
{
	if (be->state == BATON_BE_CAPTURE ||
	    (!(be->close_flags & BATON_CLOSE_REPORTED) && be->xlate.frontend_addr != cfg_service_addr))
		return 0;
	bpf_map_delete_elem(&baton_be_flows, key);
	return 1;
}

/**
 * flow_is_over() - whether the front-end flow a bare SYN found is over, so that the SYN is a new
 * connection tc may triage like any other: ended on its back end (FLOW_CLOSED) with the gate open, or
 * served here and drained. Clients reuse a port at once when the server closed first (no TIME_WAIT on
 * their side): without this, every such connection took batond's slow path from its SYN on. If so, the
 * old flow is forgotten and reported (batond forgets its half).
 */
static __always_inline int flow_is_over(const struct baton_flow_key *key, __u32 gate)
{
	struct baton_fe_handoff *h = bpf_map_lookup_elem(&baton_fe_handoffs, key);
	struct baton_be_flow *be;

	if (!h)
		return 0;
	if (!((h->flags & BATON_HANDOFF_ENDED) && (gate & BATON_GATE_OPEN)) &&
	    !((h->flags & BATON_HANDOFF_LOCAL) && h->released == gate))
		return 0;
	forget_frontend_flow(key, BATON_EV_FE_SUPERSEDED, BATON_CNT_FE_SUPERSEDED);
	/* A connection this node served as its own back end has a back-end entry on the tuple too. */
	be = bpf_map_lookup_elem(&baton_be_flows, key);
	if (be)
		backend_flow_is_over(key, be);
	return 1;
}

static __always_inline int triage_syn(struct __sk_buff *skb, const struct pkt *p,
				      const struct baton_flow_key *key);

/* A packet of a flow this node is deciding or has handed off. */
static __always_inline int frontend_packet(struct __sk_buff *skb, struct pkt *p,
					   const struct baton_flow_key *key, struct baton_fe_flow *f)
{
	/* A bare SYN is a new connection on the tuple (or a retransmission): tc triages it when the old
	 * flow is over, batond decides otherwise; it never opens the gate. */
	int bare_syn = (p->flags & TCP_FLAG_SYN_BIT) && !(p->flags & TCP_FLAG_ACK_BIT);
	__u32 gate = *(volatile __u32 *)&f->gate;

	if (bare_syn && flow_is_over(key, gate))
		return triage_syn(skb, p, key);
	if (!(gate & BATON_GATE_OPEN) && !bare_syn) {
		switch (gate_try_open(f, key, gate)) {
		case GATE_OPEN:
			gate |= BATON_GATE_OPEN;
			break;
		case GATE_RELEASED:
			return TC_ACT_OK;
		}
	}
	if (!(gate & BATON_GATE_OPEN)) {
		if ((p->flags & TCP_FLAG_ACK_BIT) && !(f->flags & BATON_FE_CLIENT_ACKED))
			__sync_fetch_and_or(&f->flags, BATON_FE_CLIENT_ACKED);
		/* Counted and queued, unless the gate opened since we looked: then this packet comes after
		 * everything batond had, and is ours. (2^31 packets through batond would be needed to carry
		 * the count into the open bit.) */
		gate = __sync_fetch_and_add(&f->gate, 1);
		if (!(gate & BATON_GATE_OPEN))
			return mark_slow(skb, BATON_COUNTED_MARK);
	}
	if (bare_syn)
		return mark_slow(skb, 0);
	if (boundary_to_batond(skb, p, f, gate))
		return mark_slow(skb, BATON_COUNTED_MARK | BATON_BOUNDARY_MARK);
	return forward(skb, p, key, f);
}

/**
 * triage_syn() - a new connection: record its SYN and let the stack answer, or leave it to batond.
 * A SYN with data (TCP Fast Open) or IP options goes to batond, which handles every SYN it is given.
 */
static __always_inline int triage_syn(struct __sk_buff *skb, const struct pkt *p,
				      const struct baton_flow_key *key)
{
	struct baton_fe_triage *t = bpf_map_lookup_elem(&baton_fe_triage, key);
	struct baton_scratch *s;
	__u32 syn_len = p->tcp_off - p->ip_off + p->tcp_hdr_len;

	if (t && t->client_isn == p->seq) {
		/* A retransmission: the stack answers it again until the client's ACK came, which needs
		 * no second answer. */
		t->last_ns = bpf_ktime_get_ns();
		return (t->flags & BATON_TRIAGE_CLIENT_ACKED) ? drop(BATON_DROP_SYN_REPEAT) : TC_ACT_OK;
	}
	if (!runtime_switch(BATON_RT_TRIAGE) || p->payload_len || p->tcp_off - p->ip_off != 20 ||
	    syn_len > BATON_SYN_MAX)
		return mark_slow(skb, 0);
	s = scratch();
	if (!s)
		return mark_slow(skb, 0);
	__builtin_memset(&s->triage, 0, sizeof(s->triage));
	s->triage.last_ns = bpf_ktime_get_ns();
	s->triage.client_isn = p->seq;
	s->triage.wscale = 0xff;
	s->triage.syn_len = syn_len;
	if (bpf_skb_load_bytes(skb, p->ip_off, s->triage.syn, syn_len & 0x7f))
		return mark_slow(skb, 0);
	if (bpf_map_update_elem(&baton_fe_triage, key, &s->triage, BPF_ANY)) {
		count(BATON_CNT_FE_TRIAGE_FULL, 1);
		return mark_slow(skb, 0);
	}
	count(BATON_CNT_FE_TRIAGED, 1);
	return TC_ACT_OK;
}

/**
 * triage_to_batond() - a request needs user space (the first, or a later one of a connection served here,
 * BATON_TRIAGE_LOCAL_WATCH): the flow becomes one batond decides (its gate counts from this packet on);
 * batond finds the SYN and SYN/ACK in the triage record.
 */
static __always_inline int triage_to_batond(struct __sk_buff *skb, struct pkt *p,
					    const struct baton_flow_key *key)
{
	struct baton_fe_flow v = {};
	struct baton_fe_flow *f;

	v.flags = BATON_FE_CLIENT_ACKED;
	v.last_ns = bpf_ktime_get_ns();
	v.watch_node = BATON_WATCH_OFF;
	/* An earlier connection's handoff on the tuple must never meet this flow's count. */
	bpf_map_delete_elem(&baton_fe_handoffs, key);
	if (bpf_map_update_elem(&baton_fe_flows, key, &v, BPF_NOEXIST)) {
		f = bpf_map_lookup_elem(&baton_fe_flows, key);
		if (!f) {
			/* No room for one more flow to decide: this node serves it. */
			bpf_map_delete_elem(&baton_fe_triage, key);
			count(BATON_CNT_FE_TRIAGE_FULL, 1);
			return TC_ACT_OK;
		}
		return frontend_packet(skb, p, key, f); /* another CPU switched it first */
	}
	f = bpf_map_lookup_elem(&baton_fe_flows, key);
	if (!f)
		return TC_ACT_OK;
	count(BATON_CNT_FE_TRIAGE_SLOW, 1);
	return frontend_packet(skb, p, key, f);
}

/**
 * local_watch_packet() - a packet of a connection this node serves from its first request on
 * (BATON_TRIAGE_LOCAL_WATCH): the stack has it; at each request boundary, a request for this node's
 * content goes on too, any other makes the connection one batond decides from this segment on, which
 * starts a request (batond takes its SYN and SYN/ACK from the record, as for a first request).
 */
static __always_inline int local_watch_packet(struct __sk_buff *skb, struct pkt *p,
					      const struct baton_flow_key *key, struct baton_fe_triage *t)
{
	int at = boundary_position(p, t->next_request);
	int rc;

	if (p->flags & (TCP_FLAG_RST_BIT | TCP_FLAG_FIN_BIT | TCP_FLAG_SYN_BIT)) {
		/* Closing (no request after this one is routed) or a new connection on the tuple. */
		bpf_map_delete_elem(&baton_fe_triage, key);
		return TC_ACT_OK;
	}
	if (at == BOUNDARY_NONE)
		return TC_ACT_OK;
	if (!runtime_switch(BATON_RT_WATCH)) {
		bpf_map_delete_elem(&baton_fe_triage, key); /* batond does not decide: nothing to watch for */
		return TC_ACT_OK;
	}
	if (at == BOUNDARY_LOST) {
		bpf_map_delete_elem(&baton_fe_triage, key);
		count(BATON_CNT_FE_WATCH_LOST, 1);
		return TC_ACT_OK;
	}
	if (request_stays(skb, p->tcp_off + p->tcp_hdr_len, p->payload_len, cfg_node_id)) {
		t->next_request = p->seq + p->payload_len;
		count(BATON_CNT_FE_REQUEST_KERNEL, 1);
		return TC_ACT_OK;
	}
	count(BATON_CNT_FE_REQUEST_SLOW, 1);
	rc = triage_to_batond(skb, p, key);
	if (skb->mark & BATON_COUNTED_MARK)
		skb->mark |= BATON_BOUNDARY_MARK;
	return rc;
}

/* A packet of a connection tc triages (see struct baton_fe_triage). */
static __always_inline int triage_packet(struct __sk_buff *skb, struct pkt *p,
					 const struct baton_flow_key *key, struct baton_fe_triage *t)
{
	__u32 off = p->tcp_off + p->tcp_hdr_len;

	t->last_ns = bpf_ktime_get_ns();
	if (t->flags & BATON_TRIAGE_LOCAL_WATCH)
		return local_watch_packet(skb, p, key, t);
	if (p->flags & TCP_FLAG_RST_BIT) {
		bpf_map_delete_elem(&baton_fe_triage, key);
		return TC_ACT_OK;
	}
	/* Not the handshake we saw answered: the stack judges it. */
	if (!(t->flags & BATON_TRIAGE_SYNACK_SEEN) || !(p->flags & TCP_FLAG_ACK_BIT) || p->ack != t->isn1 + 1)
		return TC_ACT_OK;
	if (p->payload_len == 0) {
		if (p->flags & TCP_FLAG_FIN_BIT) {
			/* Closed before any request: nothing to decide, the stack ends it. */
			bpf_map_delete_elem(&baton_fe_triage, key);
			return TC_ACT_OK;
		}
		/* The bare handshake ACK: the request segment carries the same acknowledgement, and until it
		 * comes the stack must not hand the connection to the web server. */
		if (!(t->flags & BATON_TRIAGE_CLIENT_ACKED))
			__sync_fetch_and_or(&t->flags, BATON_TRIAGE_CLIENT_ACKED);
		return drop(BATON_DROP_ACK_ABSORBED);
	}
	if (p->seq != t->client_isn + 1)
		return triage_to_batond(skb, p, key);
	if (runtime_switch(BATON_RT_WATCH) && request_stays(skb, off, p->payload_len, cfg_node_id)) {
		/* Ours, and the next request starts after this segment: watched from there on. */
		t->next_request = p->seq + p->payload_len;
		__sync_fetch_and_or(&t->flags, BATON_TRIAGE_LOCAL_WATCH);
		count(BATON_CNT_FE_TRIAGE_LOCAL, 1);
		return TC_ACT_OK;
	}
	if (request_is_local(skb, off, p->payload_len)) {
		bpf_map_delete_elem(&baton_fe_triage, key);
		count(BATON_CNT_FE_TRIAGE_LOCAL, 1);
		return TC_ACT_OK;
	}
	return triage_to_batond(skb, p, key);
}

SEC("tc")
int baton_ingress(struct __sk_buff *skb)
{
	struct baton_flow_key key = {};
	struct baton_fe_flow *fe;
	struct baton_be_flow *be;
	struct baton_fe_triage *t;
	struct pkt p = {};
	int rc = parse_packet(skb, &p);

	if (rc == PARSE_NOT_TCP)
		return TC_ACT_OK;
	if (rc == PARSE_MALFORMED) {
		/* A client packet of a flow the front end tracks (its 4-tuple readable) goes nowhere: our
		 * stack has no socket for a handed-off flow and would reset the client's connection, and
		 * the NFQUEUE path drops it alike (Frontend::on_client_packet). Any other is not ours to
		 * judge: the stack drops what it cannot use. */
		if (p.daddr == cfg_service_addr && p.dport == cfg_service_port) {
			key.saddr = p.saddr;
			key.daddr = p.daddr;
			key.sport = p.sport;
			key.dport = p.dport;
			if (bpf_map_lookup_elem(&baton_fe_flows, &key))
				return drop(BATON_DROP_MALFORMED);
		}
		return TC_ACT_OK;
	}
	if (p.daddr != cfg_service_addr || p.dport != cfg_service_port)
		return TC_ACT_OK;

	key.saddr = p.saddr;
	key.daddr = p.daddr;
	key.sport = p.sport;
	key.dport = p.dport;

	fe = bpf_map_lookup_elem(&baton_fe_flows, &key);
	if (fe)
		return frontend_packet(skb, &p, &key, fe);
	be = bpf_map_lookup_elem(&baton_be_flows, &key);
	if (be && (p.flags & TCP_FLAG_SYN_BIT) && !(p.flags & TCP_FLAG_ACK_BIT) &&
	    backend_flow_is_over(&key, be))
		be = NULL;
	if (be) {
		be->last_ns = bpf_ktime_get_ns();
		be->packets++;
		count(BATON_CNT_BE_CLIENT_SEEN, 1);
		track_client(be, &p);
		report_if_closed(be, &key);
		return TC_ACT_OK;
	}
	if ((p.flags & TCP_FLAG_SYN_BIT) && !(p.flags & TCP_FLAG_ACK_BIT))
		return triage_syn(skb, &p, &key);
	t = bpf_map_lookup_elem(&baton_fe_triage, &key);
	if (t)
		return triage_packet(skb, &p, &key, t);
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
