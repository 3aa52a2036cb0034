/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Maps shared by the ingress and egress programs. Both objects declare them with LIBBPF_PIN_BY_NAME and
 * batond opens both with the same pin root, so they share one instance, and the flow maps outlive a
 * program reload or a batond restart.
 */
#ifndef BATON_MAPS_H
#define BATON_MAPS_H

#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

#include "../baton_abi.h"

/*
 * Sizes are set by batond from the config before load (bpf_map__set_max_entries). The flow maps are plain
 * (preallocated) hashes: when one is full an insert fails, and whoever inserts falls back (tc gives the
 * connection to the local stack, batond refuses or serves it locally and counts it). An LRU map would
 * instead evict the oldest entry, a live connection whose packets would then silently miss their
 * translation. batond sizes them with room for what the kernel keeps after batond let a flow go.
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, struct baton_flow_key);
	__type(value, struct baton_fe_flow);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} baton_fe_flows SEC(".maps");

/* Written by batond only: see baton_fe_flow.gate. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, struct baton_flow_key);
	__type(value, struct baton_fe_handoff);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} baton_fe_handoffs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, struct baton_flow_key);
	__type(value, struct baton_be_flow);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} baton_be_flows SEC(".maps");

/*
 * New connections tc follows itself (see struct baton_fe_triage). A plain hash: when full, a SYN goes to
 * batond as before rather than evicting another connection's record.
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, struct baton_flow_key);
	__type(value, struct baton_fe_triage);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} baton_fe_triage SEC(".maps");

/*
 * The content map, for triage: filled by batond from its config at every start. Read by ingress only,
 * so not pinned: each load starts empty (the egress object's copy stays unused).
 */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 4096);
	__type(key, struct baton_content_key);
	__type(value, struct baton_content);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} baton_content SEC(".maps");

/* Indexed by enum baton_runtime_switch; 0 (off) until batond says otherwise. Ingress only, not pinned. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, BATON_RT_MAX);
	__type(key, __u32);
	__type(value, __u32);
} baton_runtime SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, BATON_CNT_MAX);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} baton_counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, BATON_DROP_MAX);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} baton_drops SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 20);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} baton_events SEC(".maps");

/*
 * batond's own records that must outlive a batond (a crash), kept where its pins are (bpffs holds no
 * plain files). No program reads it. Indexed by enum baton_record.
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, BATON_RECORD_MAX);
	__type(key, __u32);
	__type(value, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} baton_records SEC(".maps");

static __always_inline void count(__u32 counter, __u64 n)
{
	__u64 *v = bpf_map_lookup_elem(&baton_counters, &counter);

	if (v)
		*v += n;
}

/* Every TC_ACT_SHOT of the programs: counted under its reason (enum baton_drop_reason). */
static __always_inline int drop(__u32 reason)
{
	__u64 *v = bpf_map_lookup_elem(&baton_drops, &reason);

	if (v)
		*v += 1;
	return TC_ACT_SHOT;
}

static __always_inline void emit(const struct baton_event *ev)
{
	if (bpf_ringbuf_output(&baton_events, (void *)ev, sizeof(*ev), 0))
		count(BATON_CNT_EVENT_LOST, 1);
}

static __always_inline int runtime_switch(__u32 which)
{
	__u32 *v = bpf_map_lookup_elem(&baton_runtime, &which);

	return v && *v;
}

/* Load-time configuration (rodata), set by batond before the object is loaded. */
const volatile __u32 cfg_service_addr = 0; /* network order */
const volatile __u16 cfg_service_port = 0; /* network order */
const volatile __u32 cfg_node_id = 0;

#endif /* BATON_MAPS_H */
