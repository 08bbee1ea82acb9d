/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Every map of egress. All are pinned by name under the daemon's bpffs
 * directory and shared by the program instances of every target: a program
 * instance differs from another only in egress_target_id (.rodata, defined
 * once in lib/config.h). Maps only: the helpers that use them are in lib/,
 * one concern per header.
 * Writers and readers are named per map; sizes are in abi.h.
 */
#ifndef EGRESS_BPF_MAPS_H_
#define EGRESS_BPF_MAPS_H_

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "egress/abi.h"
#include "egress/dns_abi.h"

/* Target id -> mode, flags, active ruleset. Written by egressd, read by every
 * hook. An array so a lookup never misses and costs one index. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, EGRESS_MAX_TARGETS);
	__type(key, __u32);
	__type(value, struct egress_target_config);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} targets SEC(".maps");

/* Real uid (global, as the initial user namespace sees it) -> id of the user
 * target that names it. Written by egressd, read first by every hook of the
 * root instance (egress_target_id == EGRESS_TARGET_BY_UID, lib/config.h): a
 * miss lets the call through at once, which is all that processes of other
 * users pay. A hash: uids are sparse. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, EGRESS_MAX_USER_TARGETS);
	__type(key, __u32);
	__type(value, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} user_targets SEC(".maps");

/* Target id of each cgroup the shared set (EGRESS_TARGET_BY_STORAGE,
 * lib/config.h) is attached to. A cgroup storage keyed by cgroup id alone:
 * one value per cgroup for every hook attached there, allocated by the
 * kernel at the first attach (zero: deny) and kept as long as the cgroup.
 * Written by egressd after the set's first link at a cgroup exists, read by
 * the shared set only (every program references it; others never read it).
 * Pinned so that a reload reuses the map the live programs read: a program
 * swapped into a link keeps the storage of the map its link started with. */
struct {
	__uint(type, BPF_MAP_TYPE_CGROUP_STORAGE);
	__type(key, __u64);
	__type(value, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} attach_target SEC(".maps");

/* ---- Target selection of the watch instance (lib/config.h) ---- */

/* {watched parent's cgroup id, child name} -> target id: the child cgroups
 * a unit or path target names, by name, so a re-created one is a target's
 * from its mkdir on. Written by egressd, read by watch instances when
 * cgroup_classes has no entry for the child. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, EGRESS_MAX_WATCH_NAMES);
	__type(key, struct egress_watch_key);
	__type(value, __u32);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} watch_names SEC(".maps");

/* Watched parent's cgroup id -> kind and default (abi.h). Written by
 * egressd, read by watch instances for a child neither map names. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, EGRESS_MAX_WATCH_PARENTS);
	__type(key, __u64);
	__type(value, struct egress_watch_parent);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} watch_parents SEC(".maps");

/* Child cgroup id -> target id, EGRESS_CGROUP_COVERED (its target's own
 * instance is attached) or EGRESS_CGROUP_NOT_SELECTED. Written by egressd
 * once it has seen the cgroup, read first by watch instances. Ids are never
 * reused, so a stale entry is only memory; egressd deletes a target's. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, EGRESS_MAX_CGROUP_CLASSES);
	__type(key, __u64);
	__type(value, __u32);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} cgroup_classes SEC(".maps");

/* Working memory of a watch instance's name lookup: the key is too large
 * for the stack next to a verdict's. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct egress_watch_key);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} watch_scratch SEC(".maps");

/* {ruleset, proto, port prefix} -> elementary port interval. Written by
 * egressd (compile.cc), read by connect/sendmsg hooks. */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, EGRESS_MAX_PORT_ENTRIES);
	__type(key, struct egress_port_key);
	__type(value, struct egress_port_value);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} port_classes SEC(".maps");

/* {ruleset, proto, family, port class, CIDR} -> rule id and verdict. One
 * trie for allow and deny: userspace compiles the entries so that the longest
 * match is the right verdict (deny beats allow), see compile.h. */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, EGRESS_MAX_RULE_ENTRIES);
	__type(key, struct egress_rule_key);
	__type(value, struct egress_rule_value);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} rules SEC(".maps");

/* {ruleset, proto, family, port, address} -> rule id and verdict: the
 * rules entries of whole addresses with few ports, moved out of the trie
 * by egressd (compile.cc, abi.h). One hash probe decides them. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, EGRESS_MAX_EXACT_ENTRIES);
	__type(key, struct egress_exact_key);
	__type(value, struct egress_rule_value);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} exact_rules SEC(".maps");

/* {ruleset, unix socket address} -> rule id and verdict. Written by egressd
 * (compile.cc, with the other rule maps of a ruleset), read by the
 * connect_unix / sendmsg_unix hooks (lib/unix.h). A hash: a path matches
 * exactly, so one lookup decides. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, EGRESS_MAX_UNIX_RULES);
	__type(key, struct egress_unix_key);
	__type(value, struct egress_rule_value);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} unix_rules SEC(".maps");

/* UDP peers that sent to a target's socket first; written by recvmsg4/6,
 * read by connect/sendmsg. LRU so a flood of peers evicts the oldest instead
 * of failing. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, EGRESS_MAX_PEERS);
	__type(key, struct egress_peer_key);
	__type(value, struct egress_peer_value);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} udp_peers SEC(".maps");

/* Target id -> generation of its udp_peers entries: egressd adds one after
 * it deletes a removed target's peers (SharedMaps::DeletePeers), so that
 * no fingerprint in udp_peer_filter vouches for a deleted entry once the
 * id is a target's again. Read by recvmsg4/6. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, EGRESS_MAX_TARGETS);
	__type(key, __u32);
	__type(value, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} peer_gens SEC(".maps");

/* Which sockets found which peers in udp_peers this epoch (abi.h), in
 * front of udp_peers for the recvmsg hooks only; one array for every socket
 * (its fingerprints hold the socket's cookie). Racy by design: a way is one
 * aligned 8-byte store, and a store lost to another CPU's only costs a
 * udp_peers lookup. Pinned so that every instance shares one. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, EGRESS_PEER_FILTER_SETS);
	__type(key, __u32);
	__type(value, struct egress_peer_filter_set);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} udp_peer_filter SEC(".maps");

/* Target id -> verdict counters, per CPU; summed by egressd. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, EGRESS_MAX_TARGETS);
	__type(key, __u32);
	__type(value, struct egress_counters);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} counters SEC(".maps");

/* {target, rule} -> decisions, per CPU; summed by egressd for metrics.
 * egressd deletes the keys of a target's rules that a change removed (rule
 * ids are never reused within a target) and all of a removed target's, so
 * only live rules hold keys; a new key that finds the map full is counted
 * in the target's rule_hits_not_counted. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, EGRESS_MAX_RULE_HITS);
	__type(key, struct egress_rule_hit_key);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} rule_hits SEC(".maps");

/* Record rate limit per (target, destination, verdict, hook); written and
 * read by the hooks. A 2-way set-associative table indexed by a hash of the
 * key, not an LRU hash: an admitted record for a new destination then costs
 * one inlined array index and one cache line instead of an LRU insert
 * (locks, free list), which cost more than the denied connect itself. Two
 * ways, so that two hot keys that hash alike do not evict each other on
 * every decision. 8192 sets of 2 x 32 bytes = 512 KiB. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, EGRESS_MAX_EVENT_LIMITS / EGRESS_EVENT_LIMIT_WAYS);
	__type(key, __u32);
	__type(value, struct egress_limit_set);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} event_limits SEC(".maps");

/* Per-connection state of the sock_ops program for a flow with records (what
 * its closed record needs); lives and dies with the socket. Pinned so that
 * every target's instance shares one map. */
struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct egress_flow);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} flows SEC(".maps");

/* The record of a UDP connect() of an audit target, held until the socket
 * sends a datagram to that destination (abi.h, lib/udp_connect.h): written
 * by connect4/6, read and freed by skb_egress; lives and dies with the
 * socket. Pinned so that every target's instance shares one map. */
struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct egress_udp_connect);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} udp_connects SEC(".maps");

/* Verdict records for egressd. Submitted without wake-up; egressd drains on
 * a short timer, so a flood does not cost a reader wake-up per record. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, EGRESS_RINGBUF_BYTES);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} events SEC(".maps");

/* ---- Names learned from DNS (lib/dns_learn.h, lib/names.h) ---- */

/* Queries a target's sockets sent to port 53 of a resolver, until answered.
 * Written by skb_egress, read and deleted by skb_ingress. LRU: a query never
 * answered ages out; its late answer is then ignored (and counted). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, EGRESS_DNS_MAX_QUERIES);
	__type(key, struct egress_dns_query_key);
	__type(value, struct egress_dns_query);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} dns_queries SEC(".maps");

/* {ruleset, reversed rule name} -> pattern id. Written by egressd
 * (compile.cc, with the other rule maps of a ruleset), read by skb_ingress
 * to find which name rules an answer's question matches. */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, EGRESS_DNS_MAX_NAME_ENTRIES);
	__type(key, struct egress_dns_name_key);
	__type(value, struct egress_dns_name_value);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} dns_names SEC(".maps");

/* {target, address} -> the name patterns it was learned for, with expiry.
 * Written by skb_ingress, read by connect/sendmsg/sock_ops; egressd deletes
 * a removed target's. A hash: when full a binding is refused and counted,
 * never one evicted in silence. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, EGRESS_DNS_MAX_BINDINGS);
	__type(key, struct egress_dns_binding_key);
	__type(value, struct egress_dns_binding);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} dns_bindings SEC(".maps");

/* Where the next DNS message starts in the byte stream of a target's TCP
 * connection to port 53 (dns_abi.h, egress_dns_stream): written and read
 * by skb_ingress, from the resolver's SYN-ACK on; lives and dies with the
 * socket. Pinned so that every target's instance shares one. */
struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct egress_dns_stream);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} dns_streams SEC(".maps");

/* Target id -> DNS learning counters, per CPU; summed by egressd. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, EGRESS_MAX_TARGETS);
	__type(key, __u32);
	__type(value, struct egress_dns_counters);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} dns_counters SEC(".maps");

/* The learning programs' working memory (too large for the stack): slot 0
 * for queries (egress), 1 for answers (ingress). Pinned so that every
 * target's instance shares one instead of each allocating its own. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, struct egress_dns_learn);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} dns_scratch SEC(".maps");

#endif /* EGRESS_BPF_MAPS_H_ */
