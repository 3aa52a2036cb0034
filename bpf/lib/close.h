/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Close tracking of a handed-off flow on its back end, where both directions pass. */
#ifndef BATON_CLOSE_H
#define BATON_CLOSE_H

#include "maps.h"
#include "parse.h"

static __always_inline int seq_after_eq(__u32 a, __u32 b)
{
	return (__s32)(a - b) >= 0;
}

/**
 * report_if_closed() - once both FINs are acknowledged, or on a reset, tell batond exactly once.
 * Ingress and egress may run at the same time on two CPUs: the "reported" bit is taken atomically.
 */
static __always_inline void report_if_closed(struct baton_be_flow *f, const struct baton_flow_key *key)
{
	const __u32 done = BATON_CLOSE_CLIENT_FIN | BATON_CLOSE_SERVER_FIN | BATON_CLOSE_CLIENT_FIN_ACKED |
			   BATON_CLOSE_SERVER_FIN_ACKED;
	__u32 flags = f->close_flags;
	struct baton_event ev = {};

	if (!((flags & done) == done || (flags & BATON_CLOSE_RESET)))
		return;
	if (__sync_fetch_and_or(&f->close_flags, BATON_CLOSE_REPORTED) & BATON_CLOSE_REPORTED)
		return;
	ev.type = BATON_EV_BE_CLOSED;
	ev.reset = (flags & BATON_CLOSE_RESET) ? 1 : 0;
	ev.key = *key;
	emit(&ev);
}

/* A client packet (already translated by the front end) reached the back end. */
static __always_inline void track_client(struct baton_be_flow *f, const struct pkt *p)
{
	if (p->flags & TCP_FLAG_RST_BIT)
		__sync_fetch_and_or(&f->close_flags, BATON_CLOSE_RESET);
	if ((p->flags & TCP_FLAG_FIN_BIT) && !(f->close_flags & BATON_CLOSE_CLIENT_FIN)) {
		f->client_fin_end = p->seq + p->payload_len + 1;
		__sync_fetch_and_or(&f->close_flags, BATON_CLOSE_CLIENT_FIN);
	}
	if ((p->flags & TCP_FLAG_ACK_BIT) && (f->close_flags & BATON_CLOSE_SERVER_FIN) &&
	    seq_after_eq(p->ack, f->server_fin_end))
		__sync_fetch_and_or(&f->close_flags, BATON_CLOSE_SERVER_FIN_ACKED);
}

/* A reply of the back end's stack, before translation (back-end sequence space). */
static __always_inline void track_server(struct baton_be_flow *f, const struct pkt *p)
{
	if (p->flags & TCP_FLAG_RST_BIT)
		__sync_fetch_and_or(&f->close_flags, BATON_CLOSE_RESET);
	if ((p->flags & TCP_FLAG_FIN_BIT) && !(f->close_flags & BATON_CLOSE_SERVER_FIN)) {
		f->server_fin_end = p->seq + p->payload_len + 1;
		__sync_fetch_and_or(&f->close_flags, BATON_CLOSE_SERVER_FIN);
	}
	if ((p->flags & TCP_FLAG_ACK_BIT) && (f->close_flags & BATON_CLOSE_CLIENT_FIN) &&
	    seq_after_eq(p->ack, f->client_fin_end))
		__sync_fetch_and_or(&f->close_flags, BATON_CLOSE_CLIENT_FIN_ACKED);
}

#endif /* BATON_CLOSE_H */
