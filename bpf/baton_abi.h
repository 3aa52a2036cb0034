/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The one ABI shared by the BPF programs and batond: map keys and values, events, counters. Plain C,
 * fixed-width types, explicit padding. The asserts at the end of this header pin every size and offset
 * and are compiled by both sides (clang for BPF, g++ for batond), so that a change on one side cannot go
 * unnoticed on the other; daemon/bpf_abi_convert.hpp names every field, so that a field added here
 * without a conversion fails batond's build.
 *
 * Byte order: addresses and ports in network order (as in the packet, so that keys are built without
 * conversion); sequence numbers, timestamps and offsets in host order (as the rewrite arithmetic needs).
 */
#ifndef BATON_ABI_H
#define BATON_ABI_H

#include <linux/types.h>

/* A TCP flow, always in the client -> server direction. */
struct baton_flow_key {
	__u32 saddr; /* client */
	__u32 daddr; /* this node's service address */
	__u16 sport;
	__u16 dport;
};

/* How a flow translates between the client's view (the front end) and the back end's connection. */
struct baton_xlate {
	__u32 frontend_addr; /* network order */
	__u32 backend_addr;  /* network order */
	__u32 isn1;	     /* front end's ISN, the one the client knows */
	__u32 isn2;	     /* back end's ISN */
	__u32 ts_offset;     /* added to back-end TSvals on the way to the client */
	__u8 timestamps;     /* timestamps were negotiated */
	__u8 frontend_wscale;
	__u8 backend_wscale;
	__u8 pad;
};

/*
 * baton_fe_flow.gate orders the one switch a front-end flow makes between two paths: from batond (slow
 * path: held, decided, then forwarded from user space while the handoff settles) to tc (translate and
 * redirect in the kernel). Packets of one flow must never overtake each other across that switch: the
 * back end's kernel drops a segment whose timestamp is older than one it already took (PAWS, RFC 7323).
 * (A flow served locally makes the same switch, from batond to the local stack: BATON_HANDOFF_LOCAL.)
 * While the gate is closed, tc counts every packet it sends to batond (the low bits) and tags it with
 * BATON_COUNTED_MARK; batond reports in baton_fe_handoffs how many of those it has given a verdict to.
 * tc opens the gate only when the two numbers are equal, i.e. when nothing of the flow is left in the
 * queue or in user space. Count and open bit share one word, so that the switch and every count are
 * ordered by atomic operations on it: a packet is either counted before the gate opens or forwarded
 * after.
 */
#define BATON_GATE_OPEN	      (1u << 31)  /* tc translates and redirects the flow itself */
#define BATON_GATE_COUNT_MASK 0x7fffffffu /* packets sent to batond while the gate was closed */

/* baton_fe_flow.flags (written by tc only) */
#define BATON_FE_CLIENT_ACKED (1u << 0) /* the client completed the handshake: it needs no more SYN/ACKs */

/*
 * Request watching (front end, multiple handoff): while the gate is open tc looks at the segment that
 * starts a handed-off connection's next request (client sequence number next_request). A whole request
 * head without a body, for content the node serving the flow (watch_node) holds, goes on to it and tc
 * moves next_request past it; any other request closes the gate again (counting that segment, tagged
 * BATON_BOUNDARY_MARK) and batond decides it, holds it, maybe moves the connection, and reopens the
 * gate through baton_fe_handoffs with where the request after it starts.
 */
#define BATON_WATCH_OFF 0xffffffffu /* watch_node: tc does not look at request boundaries */

struct baton_fe_flow {
	__u32 gate;
	__u32 flags;
	struct baton_xlate xlate; /* valid once the gate is open (tc copies it from the handoff) */
	__u64 last_ns;		  /* bpf_ktime_get_ns() of the last packet (CLOCK_MONOTONIC) */
	__u64 packets;
	__u32 next_request; /* copied from the handoff with xlate; tc advances it */
	__u32 watch_node;   /* node id, or BATON_WATCH_OFF */
};

/* baton_fe_handoff.released before batond knows the number (after a datapath attach): never a count. */
#define BATON_RELEASED_UNKNOWN 0xffffffffu
/* baton_fe_handoff.flags */
#define BATON_HANDOFF_ENDED (1u << 0) /* closed; translated only for the linger time, never adopted */
/* Not handed off: served by this node (or given up before its handshake ended). Once drained, tc lets its
 * packets through to the local stack, forgets the flow and reports it (BATON_EV_FE_RELEASED). */
#define BATON_HANDOFF_LOCAL (1u << 1)

/*
 * A front-end flow batond handed off: written by batond only (tc reads it), so that no user-space
 * update can overwrite what tc counts in baton_fe_flow.
 */
struct baton_fe_handoff {
	struct baton_xlate xlate;
	__u32 released; /* packets tc counted that batond has given their verdict to */
	__u32 flags;
	__u32 next_request; /* where the next request starts (client sequence space) */
	__u32 watch_node;   /* the node serving the flow, or BATON_WATCH_OFF (see baton_fe_flow) */
};

/*
 * Kernel triage (front end): tc follows a new connection itself from its SYN, and gives it to user space
 * only when its first request needs a decision the kernel cannot make. It records the SYN and what the
 * stack's SYN/ACK granted, absorbs the client's bare handshake ACK (the request segment that follows
 * carries the same acknowledgement, so the stack stays in SYN_RECV until it arrives), and reads the
 * request line of the first segment: content this node serves goes to the local stack untouched and the
 * flow is forgotten, or, when the request ends with the segment, watched (LOCAL_WATCH); anything else
 * (another node's content, a request line that is not all in this segment, an odd method or target) becomes a
 * baton_fe_flow counted through the gate, and batond takes the flow over from this record.
 */
#define BATON_SYN_MAX 80 /* an IPv4 header without options (20) + the largest TCP header (60) */

/* baton_fe_triage.flags */
#define BATON_TRIAGE_SYNACK_SEEN  (1u << 0) /* the synack fields hold the stack's answer to this SYN */
#define BATON_TRIAGE_CLIENT_ACKED (1u << 1) /* the client's handshake ACK came (and was absorbed) */
/* Served here from its first request on, and watched: tc sends each later request for this node's content
 * on to the stack and gives batond the first one that is not (the connection moves; see next_request). */
#define BATON_TRIAGE_LOCAL_WATCH (1u << 2)

struct baton_fe_triage {
	__u64 last_ns;
	__u32 client_isn;
	__u32 flags;
	/* The stack's SYN/ACK, as baton_event reports one. */
	__u32 isn1;
	__u32 tsval;
	__u16 mss;
	__u8 has_timestamp;
	__u8 wscale; /* 0xff: no window scale option */
	__u8 sack_permitted;
	__u8 pad;
	__u16 window;
	__u16 syn_len;
	__u8 syn[BATON_SYN_MAX]; /* the client's SYN, IPv4 header first */
	__u8 pad2[2];
	__u32 next_request; /* LOCAL_WATCH: where the next request starts (client sequence space) */
};

/*
 * The content map as tc sees it (an LPM trie over the request path's bytes): whether this node serves a
 * path itself. Paths are matched on their first BATON_PATH_MAX bytes; a rule longer than that is
 * entered cut to that length and marked unsure, so that user space decides every path it could match.
 */
#define BATON_PATH_MAX 64

struct baton_content_key {
	__u32 prefixlen; /* in bits */
	__u8 path[BATON_PATH_MAX];
};

/* baton_content.flags */
#define BATON_CONTENT_LOCAL  (1u << 0) /* served here: this node holds it, or no node is configured */
#define BATON_CONTENT_UNSURE (1u << 1) /* a longer rule was cut to fit: user space decides */
#define BATON_CONTENT_WIDE   (1u << 2) /* a holder's node id is 64 or more: holders is incomplete */

struct baton_content {
	__u64 holders; /* bit n: node n holds the content (ids below 64) */
	__u32 flags;
	__u32 pad;
};

/* baton_runtime: switches batond sets while it runs, indexed by these. */
enum baton_runtime_switch {
	BATON_RT_TRIAGE =
		0, /* 1: tc triages new connections (batond runs and takes over what tc cannot decide) */
	BATON_RT_WATCH = 1, /* 1: tc watches request boundaries of handed-off flows (batond runs and decides
			     * what tc cannot) */
	BATON_RT_MAX,
};

enum baton_be_state {
	BATON_BE_CAPTURE = 1,	  /* SYN replayed: capture the stack's SYN/ACK, never send it */
	BATON_BE_ESTABLISHED = 2, /* rewrite replies to the client; watch for the close */
	BATON_BE_SILENT = 3,	  /* moving to another node at a request boundary: send the client nothing */
};

/* Close tracking bits in baton_be_flow.close_flags, set with atomic or (ingress and egress race). */
#define BATON_CLOSE_CLIENT_FIN	     (1u << 0)
#define BATON_CLOSE_SERVER_FIN	     (1u << 1)
#define BATON_CLOSE_CLIENT_FIN_ACKED (1u << 2)
#define BATON_CLOSE_SERVER_FIN_ACKED (1u << 3)
#define BATON_CLOSE_RESET	     (1u << 4)
#define BATON_CLOSE_REPORTED	     (1u << 5)

struct baton_be_flow {
	__u32 state;
	__u32 close_flags;
	__u32 client_fin_end; /* sequence number after the client's FIN */
	__u32 server_fin_end; /* sequence number after our FIN, back-end space */
	struct baton_xlate xlate;
	__u64 last_ns;
	__u64 packets;
};

enum baton_event_type {
	BATON_EV_FE_SYNACK = 1,	  /* the front end's stack answered a watched SYN */
	BATON_EV_BE_SYNACK = 2,	  /* the back end's stack answered a replayed SYN (captured, dropped) */
	BATON_EV_BE_REFUSED = 3,  /* the back end's stack reset a replayed SYN: nothing listens */
	BATON_EV_BE_CLOSED = 4,	  /* a handed-off flow finished (both FINs acked) or was reset */
	BATON_EV_BE_BLOCKED = 5,  /* the stack answered a replayed SYN with a bare ACK (seq, ack): a TIME_WAIT
				   * of an older connection on the 4-tuple rejected it (older timestamps) */
	BATON_EV_FE_RELEASED = 6, /* a flow served locally is drained: tc forgot it, the stack has it */
	BATON_EV_FE_SUPERSEDED = 7, /* a new connection's SYN on the tuple of a flow that is over (ended on
				     * its back end, or served here and drained): tc forgot the old flow and
				     * triages the new connection */
};

/* Ring buffer record, BPF -> batond. */
struct baton_event {
	__u32 type;
	__u32 reset; /* BE_CLOSED: 1 when by RST */
	struct baton_flow_key key;
	__u32 seq; /* SYN/ACK: the ISN */
	__u32 ack;
	__u32 tsval;
	__u16 mss;
	__u8 has_timestamp;
	__u8 wscale; /* 0xff: no window scale option */
	__u8 sack_permitted;
	__u8 pad;
	__u16 window; /* SYN/ACK: the (unscaled) window offered */
};

/* Per-CPU counters, indexed by these. */
enum baton_counter {
	BATON_CNT_FE_FORWARDED = 0, /* packets translated and redirected to a back end */
	BATON_CNT_FE_FORWARDED_BYTES,
	BATON_CNT_FE_SLOW, /* packets marked for batond (SYNs, flows being decided) */
	BATON_CNT_FE_SYNACK_SEEN,
	BATON_CNT_BE_REWRITTEN, /* replies translated on their way to the client */
	BATON_CNT_BE_REWRITTEN_BYTES,
	BATON_CNT_BE_SYNACK_CAPTURED,
	BATON_CNT_BE_CLIENT_SEEN,  /* forwarded client packets that arrived at this back end */
	BATON_CNT_REDIRECT_FAILED, /* bpf_redirect_neigh failed: left to the stack to forward */
	BATON_CNT_EVENT_LOST,	   /* ring buffer full */
	BATON_CNT_FE_GATE_OPENED,  /* handed-off flows that tc took over once batond had drained them */
	BATON_CNT_FE_RELEASED, /* flows served locally that tc gave to the stack once batond had drained them
				*/
	BATON_CNT_FE_TRIAGED,  /* new connections tc followed from their SYN (kernel triage) */
	BATON_CNT_FE_TRIAGE_LOCAL,   /* ... whose first request tc gave to the local stack itself */
	BATON_CNT_FE_TRIAGE_SLOW,    /* ... whose first request tc gave to batond to decide */
	BATON_CNT_FE_TRIAGE_FULL,    /* SYNs sent to batond because the triage map was full */
	BATON_CNT_FE_REQUEST_KERNEL, /* later requests of handed-off connections tc sent on where they were */
	BATON_CNT_FE_REQUEST_SLOW,   /* ... that tc gave to batond to decide (the gate closed at them) */
	BATON_CNT_FE_WATCH_LOST,     /* connections whose next request boundary tc could no longer tell */
	BATON_CNT_FE_OWN_STACK,	     /* client packets translated for this node's own stack (a flow that
				      * moved back to the front end) */
	BATON_CNT_FE_SUPERSEDED,     /* new connections on the tuple of a flow that was over (a port
				      * reused at once): tc forgot the old flow (BATON_EV_FE_SUPERSEDED) */
	BATON_CNT_MAX,
};

/*
 * Why a tc program dropped a packet (TC_ACT_SHOT): the index of the per-CPU baton_drops map. Every drop
 * goes through drop() (bpf/lib/maps.h), which counts it under its reason, as Cilium's drop reasons do.
 */
enum baton_drop_reason {
	BATON_DROP_MALFORMED = 0, /* a client packet of a flow the front end tracks whose headers or options
				   * do not parse (the NFQUEUE path drops it too): passed on, our stack,
				   * which has no socket for the flow, would reset the client's connection */
	BATON_DROP_REWRITE,	  /* a translation failed (headers not pullable, checksum helper refused) */
	BATON_DROP_CAPTURED,	  /* our stack's packets of a replayed connection before it is established */
	BATON_DROP_SILENCED,	  /* replies of a flow moving to another node */
	BATON_DROP_SYNACK_REPEAT, /* our SYN/ACK retransmitted after the client's ACK (held or absorbed) */
	BATON_DROP_SYN_REPEAT,	  /* a client's SYN retransmitted after its handshake ACK was absorbed */
	BATON_DROP_ACK_ABSORBED,  /* bare handshake ACKs of triaged flows, not passed on (see
				   * baton_fe_triage) */
	BATON_DROP_MAX,
};

/* baton_records: what batond must remember across its own crash. */
enum baton_record {
	BATON_RECORD_QDISC_OURS = 0, /* the ifindex + 1 whose clsact qdisc batond created, or 0 */
	BATON_RECORD_MAX,
};

/* skb->mark bit set by tc ingress on packets that batond must see (iptables queues exactly these). */
#define BATON_SLOW_MARK 0x40000000u
/* skb->mark bit set by batond on packets it already translated in user space (NFQUEUE verdict), so that
 * tc egress does not translate them a second time while the datapath switches between modes. */
#define BATON_DONE_MARK 0x20000000u
/* skb->mark bit set by tc ingress beside BATON_SLOW_MARK when it counted the packet in its flow's gate. */
#define BATON_COUNTED_MARK 0x10000000u
/* skb->mark bit set by tc ingress beside BATON_COUNTED_MARK on the segment that starts a handed-off
 * connection's next request, at which it closed the flow's gate (see baton_fe_flow.watch_node). */
#define BATON_BOUNDARY_MARK 0x08000000u

/*
 * Layout checks, compiled by both sides (clang for BPF, g++ for batond): if either compiler laid a struct
 * out differently, the build fails instead of the maps silently disagreeing.
 */
#ifdef __cplusplus
#define BATON_ABI_ASSERT(cond, msg) static_assert(cond, msg)
#else
#define BATON_ABI_ASSERT(cond, msg) _Static_assert(cond, msg)
#endif
#define BATON_ABI_AT(type, field, off)                                                                       \
	BATON_ABI_ASSERT(__builtin_offsetof(struct type, field) == off, #type "." #field)
BATON_ABI_ASSERT(sizeof(struct baton_flow_key) == 12, "baton_flow_key size");
BATON_ABI_AT(baton_flow_key, saddr, 0);
BATON_ABI_AT(baton_flow_key, daddr, 4);
BATON_ABI_AT(baton_flow_key, sport, 8);
BATON_ABI_AT(baton_flow_key, dport, 10);
BATON_ABI_ASSERT(sizeof(struct baton_xlate) == 24, "baton_xlate size");
BATON_ABI_AT(baton_xlate, frontend_addr, 0);
BATON_ABI_AT(baton_xlate, backend_addr, 4);
BATON_ABI_AT(baton_xlate, isn1, 8);
BATON_ABI_AT(baton_xlate, isn2, 12);
BATON_ABI_AT(baton_xlate, ts_offset, 16);
BATON_ABI_AT(baton_xlate, timestamps, 20);
BATON_ABI_AT(baton_xlate, frontend_wscale, 21);
BATON_ABI_AT(baton_xlate, backend_wscale, 22);
BATON_ABI_AT(baton_xlate, pad, 23);
BATON_ABI_ASSERT(sizeof(struct baton_fe_flow) == 56, "baton_fe_flow size");
BATON_ABI_AT(baton_fe_flow, gate, 0);
BATON_ABI_AT(baton_fe_flow, flags, 4);
BATON_ABI_AT(baton_fe_flow, xlate, 8);
BATON_ABI_AT(baton_fe_flow, last_ns, 32);
BATON_ABI_AT(baton_fe_flow, packets, 40);
BATON_ABI_AT(baton_fe_flow, next_request, 48);
BATON_ABI_AT(baton_fe_flow, watch_node, 52);
BATON_ABI_ASSERT(sizeof(struct baton_fe_handoff) == 40, "baton_fe_handoff size");
BATON_ABI_AT(baton_fe_handoff, xlate, 0);
BATON_ABI_AT(baton_fe_handoff, released, 24);
BATON_ABI_AT(baton_fe_handoff, flags, 28);
BATON_ABI_AT(baton_fe_handoff, next_request, 32);
BATON_ABI_AT(baton_fe_handoff, watch_node, 36);
BATON_ABI_ASSERT(sizeof(struct baton_be_flow) == 56, "baton_be_flow size");
BATON_ABI_AT(baton_be_flow, state, 0);
BATON_ABI_AT(baton_be_flow, close_flags, 4);
BATON_ABI_AT(baton_be_flow, client_fin_end, 8);
BATON_ABI_AT(baton_be_flow, server_fin_end, 12);
BATON_ABI_AT(baton_be_flow, xlate, 16);
BATON_ABI_AT(baton_be_flow, last_ns, 40);
BATON_ABI_AT(baton_be_flow, packets, 48);
BATON_ABI_ASSERT(sizeof(struct baton_event) == 40, "baton_event size");
BATON_ABI_AT(baton_event, type, 0);
BATON_ABI_AT(baton_event, reset, 4);
BATON_ABI_AT(baton_event, key, 8);
BATON_ABI_AT(baton_event, seq, 20);
BATON_ABI_AT(baton_event, ack, 24);
BATON_ABI_AT(baton_event, tsval, 28);
BATON_ABI_AT(baton_event, mss, 32);
BATON_ABI_AT(baton_event, has_timestamp, 34);
BATON_ABI_AT(baton_event, wscale, 35);
BATON_ABI_AT(baton_event, sack_permitted, 36);
BATON_ABI_AT(baton_event, pad, 37);
BATON_ABI_AT(baton_event, window, 38);
BATON_ABI_ASSERT(sizeof(struct baton_fe_triage) == 120, "baton_fe_triage size");
BATON_ABI_AT(baton_fe_triage, last_ns, 0);
BATON_ABI_AT(baton_fe_triage, client_isn, 8);
BATON_ABI_AT(baton_fe_triage, flags, 12);
BATON_ABI_AT(baton_fe_triage, isn1, 16);
BATON_ABI_AT(baton_fe_triage, tsval, 20);
BATON_ABI_AT(baton_fe_triage, mss, 24);
BATON_ABI_AT(baton_fe_triage, has_timestamp, 26);
BATON_ABI_AT(baton_fe_triage, wscale, 27);
BATON_ABI_AT(baton_fe_triage, sack_permitted, 28);
BATON_ABI_AT(baton_fe_triage, pad, 29);
BATON_ABI_AT(baton_fe_triage, window, 30);
BATON_ABI_AT(baton_fe_triage, syn_len, 32);
BATON_ABI_AT(baton_fe_triage, syn, 34);
BATON_ABI_AT(baton_fe_triage, pad2, 114);
BATON_ABI_AT(baton_fe_triage, next_request, 116);
BATON_ABI_ASSERT(sizeof(struct baton_content_key) == 4 + BATON_PATH_MAX, "baton_content_key size");
BATON_ABI_AT(baton_content_key, prefixlen, 0);
BATON_ABI_AT(baton_content_key, path, 4);
BATON_ABI_ASSERT(sizeof(struct baton_content) == 16, "baton_content size");
BATON_ABI_AT(baton_content, holders, 0);
BATON_ABI_AT(baton_content, flags, 8);
BATON_ABI_AT(baton_content, pad, 12);
#undef BATON_ABI_AT

#endif /* BATON_ABI_H */
