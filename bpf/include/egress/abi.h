/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * egress kernel<->userspace ABI. Included by bpf/egress.bpf.c (clang -target
 * bpf) and by userspace C++. The ONLY definition of these types; never mirror
 * them.
 *
 * Rules: fixed-width __uN/__beN only (no bool, enum-typed fields, pointers,
 * bitfields); explicit pad fields, zeroed by writers; every struct is
 * size-asserted below it; bump EGRESS_ABI_VERSION on any change that affects
 * pinned maps (pins live under a directory named after the version).
 *
 * How a verdict is found (no loop over rules anywhere):
 *   1. The program finds its target id (lib/config.h, target__find): the
 *      shared set (egressd --shared_program_set, the default) reads it from
 *      the attach_target cgroup storage of the cgroup it is attached to
 *      (target__own_id); a target with program instances of its own has it
 *      in .rodata (egress_target_id); the user targets' root set looks the
 *      caller's uid up, a watch instance the caller's cgroup.
 *      targets[target_id] gives mode, flags and the active ruleset.
 *   2. port_classes (LPM trie over {ruleset, proto, port}) maps the destination
 *      port to the id of the elementary port interval it falls in, built by
 *      userspace from every port range of the ruleset. Miss = no ranged rule.
 *   3. rules (one LPM trie over {ruleset, proto, family, port_class,
 *      address}) is probed with the port class, then on a miss with
 *      EGRESS_PORT_CLASS_ANY; the entry found carries the verdict. Userspace
 *      compiles allow and deny rules so that the longest match is always the
 *      right answer (deny beats allow): see userspace/policy/compile.h.
 *   Before 2 and 3, exact_rules (a hash over {ruleset, proto, family, port,
 *   address}) is probed once for tcp/udp: userspace moves there every rules
 *   entry of a whole address (/32, /128) whose port class covers at most
 *   EGRESS_EXACT_CLASS_PORTS ports, one key per port, with the verdict the
 *   tries would give. A hit is the answer; a miss goes on to the tries,
 *   which no longer hold those entries. The common allow-list rule (one
 *   host, one port) costs one hash probe whatever the number of rules.
 *   Name rules' entries (family EGRESS_FAMILY_NAME, keyed by pattern id)
 *   move the same way; lib/names.h probes them per pattern bound to the
 *   destination (ABI 9).
 *   A ruleset id is never reused while its entries exist, so userspace
 *   replaces a whole rule set by writing a new ruleset and flipping
 *   targets[target_id].ruleset in one 8-byte update.
 */
#ifndef EGRESS_ABI_H_
#define EGRESS_ABI_H_

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#ifdef __cplusplus
#define EGRESS_ABI_SIZE(t, n)                                                  \
	static_assert(sizeof(struct t) == (n), #t " ABI size changed")
#else
#define EGRESS_ABI_SIZE(t, n)                                                  \
	_Static_assert(sizeof(struct t) == (n), #t " ABI size changed")
#endif

#define EGRESS_ABI_VERSION 12

/* Target ids index the targets array; 0 is never used. At most 65536
 * (egress_limit_key.target_id is 16 bits). */
#define EGRESS_MAX_TARGETS 1024
#define EGRESS_MAX_RULE_ENTRIES (1 << 20)
#define EGRESS_MAX_PORT_ENTRIES (1 << 18)
/* exact_rules: a hash allocates its buckets when created (16 bytes each:
 * 8 MiB of kernel memory here), so it is smaller than the rules trie; a
 * ruleset moves at most EGRESS_MAX_EXACT_PER_SET entries there and keeps
 * the rest in the trie, and egressd compiles without moving when the map
 * has no room (lookups are right either way). */
#define EGRESS_MAX_EXACT_ENTRIES (1 << 19)
#define EGRESS_MAX_EXACT_PER_SET (1 << 17)
#define EGRESS_EXACT_CLASS_PORTS 4
/* udp_peers: 4 x 65,536, so that 100,000 clients of one busy UDP server
 * all keep their entries: 30 MiB of preallocated LRU nodes (memlock;
 * 7.5 MiB at 65,536). */
#define EGRESS_MAX_PEERS 262144
#define EGRESS_MAX_RULE_HITS 65536
#define EGRESS_MAX_UNIX_RULES 16384
/* user_targets: uid -> target id. The one program set attached at the
 * cgroup2 root for user targets is loaded with egress_target_id =
 * EGRESS_TARGET_BY_UID (0, never a target's id) and finds its target there
 * by the caller's uid; other uids pass at once. */
#define EGRESS_MAX_USER_TARGETS 1024
#define EGRESS_TARGET_BY_UID 0
/*
 * The watch instance (lib/config.h, target__of_cgroup): one program set per
 * watched parent cgroup (a unit's slice, a path target's parent, a workload
 * parent), attached there once and pinned, loaded with egress_target_id =
 * EGRESS_TARGET_BY_CGROUP and egress_watch_level = the parent's level. It
 * finds a call's target from the caller's cgroup: the child of the parent
 * it lies in, by cgroup id (cgroup_classes) or else by name (watch_names),
 * so a re-created cgroup is enforced from its first instruction, before
 * egressd sees it.
 */
#define EGRESS_TARGET_BY_CGROUP 0xffffffffu
/*
 * The shared set (lib/config.h, target__own_id): one program set for
 * every literal-cgroup target, loaded once with egress_target_id =
 * EGRESS_TARGET_BY_STORAGE. Each call reads its target id from the cgroup
 * storage of the attachment it runs for (attach_target, maps.h), which
 * egressd writes after the set's first link at that cgroup exists. Id 0
 * (not written yet, or a storage map made again) denies everything.
 */
#define EGRESS_TARGET_BY_STORAGE 0xfffffffeu
#define EGRESS_MAX_WATCH_NAMES 4096
#define EGRESS_MAX_WATCH_PARENTS 256
#define EGRESS_MAX_CGROUP_CLASSES 65536
/* Target ids egressd never hands out: the configs of an unclassified child
 * of a workload parent (EGRESS_TF_UNCLASSIFIED), denied or audited. Targets
 * get ids 1 .. EGRESS_TARGET_ID_LIMIT - 1. */
#define EGRESS_TARGET_UNCLASSIFIED_DENY (EGRESS_MAX_TARGETS - 1)
#define EGRESS_TARGET_UNCLASSIFIED_AUDIT (EGRESS_MAX_TARGETS - 2)
#define EGRESS_TARGET_ID_LIMIT (EGRESS_MAX_TARGETS - 2)
/* cgroup_classes values that are no target id: the cgroup's own target
 * instance is attached (the watch instance lets it be, so a call is not
 * decided twice), or egressd found the workload is no target's. */
#define EGRESS_CGROUP_COVERED 0xfffffffeu
#define EGRESS_CGROUP_NOT_SELECTED 0xfffffffdu
/* A UDP peer may be answered for this long after it last sent. */
#define EGRESS_PEER_TTL_NS (300ULL * 1000000000ULL)
/* A known peer's last_seen_ns is rewritten at most this often (peers.h). */
#define EGRESS_PEER_REFRESH_NS 1000000000ULL
#define EGRESS_RINGBUF_BYTES (1 << 22)

/* Port class used by rules that match every port. */
#define EGRESS_PORT_CLASS_ANY 0xffff

/* Modes, in egress_target_config.mode. OFF = attached but lets all pass. */
enum {
	EGRESS_MODE_OFF = 0,
	EGRESS_MODE_ENFORCE = 1,
	EGRESS_MODE_AUDIT = 2,
};

/* egress_target_config.flags */
enum {
	EGRESS_TF_ALLOW_RAW = 1 << 0, /* SOCK_RAW inet sockets may be created */
	EGRESS_TF_ALLOW_ICMP = 1 << 1,	/* ping sockets may be created */
	EGRESS_TF_EVENT_ALLOW = 1 << 2, /* also emit a record for each allow */
	EGRESS_TF_EVENT_NONE = 1 << 3,	/* no verdict records (counters only) */
	/* The target has unix rules: unix connect/sendmsg are decided. Without
	 * it they pass unlooked at (not counted, not recorded). */
	EGRESS_TF_UNIX_RULES = 1 << 4,
	/* ... and at least one allows: a path no rule names is denied. */
	EGRESS_TF_UNIX_ALLOWLIST = 1 << 5,
	/* The target has name rules (dns_abi.h): its DNS queries and answers
	 * are watched, and connect/sendmsg consult the learned bindings. */
	EGRESS_TF_NAME_RULES = 1 << 6,
	/* The config of an unclassified workload
	 * (EGRESS_TARGET_UNCLASSIFIED_*): every decision is a deny (or audit)
	 * with EGRESS_REASON_UNCLASSIFIED, whatever the rules say. */
	EGRESS_TF_UNCLASSIFIED = 1 << 7,
};

/* Verdicts, in events. AUDIT = would have been denied, let through. */
enum {
	EGRESS_VERDICT_DENY = 0,
	EGRESS_VERDICT_ALLOW = 1,
	EGRESS_VERDICT_AUDIT = 2,
	/* An outbound TCP connection established although no rule allows it
	 * (connected before enforcement began, or passed in from outside). */
	EGRESS_VERDICT_UNEXPLAINED = 3,
};

/* egress_event.kind */
enum {
	EGRESS_EVENT_VERDICT = 0, /* a connect/sendmsg/socket decision */
	EGRESS_EVENT_FLOW_ESTABLISHED = 1, /* sock_ops: TCP established */
	EGRESS_EVENT_FLOW_CLOSED = 2,	   /* sock_ops: TCP closed */
	/* Made by egressd, not the kernel: a connection that existed when a
	 * target was added or its rules changed and that the rules do not
	 * allow, left up (EXISTING) or destroyed with SOCK_DESTROY (CUT). */
	EGRESS_EVENT_EXISTING = 3,
	EGRESS_EVENT_CUT = 4,
	/* Made by the sweep (bpf/limits_sweep.bpf.c, run by egressd about
	 * every 0.5 s): `suppressed` decisions for this destination that the
	 * rate limit held back and that no later record reported, once the
	 * window they fell in has passed. No task fields; verdict, hook and
	 * destination are the held-back decisions'. */
	EGRESS_EVENT_HELD_BACK = 5,
	/* Made by egressd: the field self-check found the target not
	 * enforced (a probe connect from inside its cgroup to the destination
	 * in the record was not refused, or hooks are missing: then no
	 * destination). Reason EGRESS_REASON_NOT_ENFORCED. */
	EGRESS_EVENT_SELF_CHECK_FAILED = 6,
	/* skb_ingress, audit mode: a DNS answer the target's own query got
	 * (struct egress_dns_answer_event, dns_abi.h). */
	EGRESS_EVENT_DNS_ANSWER = 7,
};

enum {
	EGRESS_DIR_OUTBOUND = 0, /* the target connected (active open) */
	EGRESS_DIR_INBOUND = 1,	 /* the target accepted (passive open) */
};

/* Why a verdict was reached. */
enum {
	EGRESS_REASON_NO_MATCH = 0, /* default deny */
	EGRESS_REASON_MATCH_ALLOW = 1,
	EGRESS_REASON_MATCH_DENY = 2,
	EGRESS_REASON_UDP_REPLY = 3,	/* peer sent to this socket first */
	EGRESS_REASON_SOCKET_TYPE = 4,	/* raw / ping socket refused */
	EGRESS_REASON_SOURCE_ROUTE = 5, /* routing header / LSRR / SSRR */
	EGRESS_REASON_LOOPBACK = 6,	/* reserved */
	/* A unix path no rule names, let through: the target's unix rules
	 * are all denies (no allow-list). */
	EGRESS_REASON_UNIX_UNLISTED = 7,
	/* EGRESS_EVENT_HELD_BACK records: the decisions' own reasons are not
	 * kept by the rate limit. */
	EGRESS_REASON_RATE_LIMITED = 8,
	EGRESS_REASON_NOT_ENFORCED = 9, /* EGRESS_EVENT_SELF_CHECK_FAILED */
	/* A new child of a workload parent that egressd has not classified
	 * yet: the parent's default (deny, or audit) applied. */
	EGRESS_REASON_UNCLASSIFIED = 10,
	/* IP_FREEBIND / IPV6_FREEBIND on an IPv6 datagram socket, or
	 * IP_TRANSPARENT / IPV6_TRANSPARENT on any datagram socket, refused:
	 * a source address the host does not own lets a socket of the target
	 * pose, over loopback, as any peer of another (UDP replies, DNS
	 * answers). */
	EGRESS_REASON_NONLOCAL_SOURCE = 11,
	/* A packet of a target with name rules sent from port 53 of an
	 * address the target may query as its resolver, dropped: it would
	 * answer the target's own queries (an address of a running loopback
	 * resolver taken as source, or a resolver the target runs itself), and
	 * an answer it made up would name any address. */
	EGRESS_REASON_RESOLVER_SOURCE = 12,
};

enum {
	EGRESS_HOOK_CONNECT4 = 1,
	EGRESS_HOOK_CONNECT6 = 2,
	EGRESS_HOOK_SENDMSG4 = 3,
	EGRESS_HOOK_SENDMSG6 = 4,
	EGRESS_HOOK_SOCK_CREATE = 5,
	EGRESS_HOOK_SETSOCKOPT = 6,
	EGRESS_HOOK_SKB_EGRESS = 7,
	EGRESS_HOOK_SOCK_OPS = 8,
	EGRESS_HOOK_CONNECT_UNIX = 9,
	EGRESS_HOOK_SENDMSG_UNIX = 10,
	EGRESS_HOOK_SOCK_DIAG = 11, /* egressd's sock_diag look (no program) */
};

/* Attach types of the AF_UNIX sock_addr hooks (Linux 6.7), which the UAPI
 * headers of Debian 12 do not name yet. Same numbers as enum
 * bpf_attach_type of include/uapi/linux/bpf.h. */
#define EGRESS_ATTACH_CGROUP_UNIX_CONNECT 49
#define EGRESS_ATTACH_CGROUP_UNIX_SENDMSG 50

/* Address family as stored in keys and events (not AF_* numbers). */
enum {
	EGRESS_FAMILY_UNIX = 1, /* unix records: the address is in path */
	EGRESS_FAMILY_IPV4 = 4,
	EGRESS_FAMILY_IPV6 = 6,
	/* rules entries of name rules: egress_rule_key.addr holds the rule
	 * name's pattern id (8 bytes, the rest zero; dns_abi.h). */
	EGRESS_FAMILY_NAME = 16,
};

/* targets: BPF_MAP_TYPE_ARRAY indexed by target id. 8 bytes so that the
 * daemon's update is a single aligned store as seen by readers. */
struct egress_target_config {
	__u32 ruleset; /* 0 = no rules: everything is denied (or audited) */
	__u8 mode;     /* EGRESS_MODE_* */
	__u8 flags;    /* EGRESS_TF_* */
	/* Seconds a learned name binding lives at least (dns_abi.h); 0 means
	 * EGRESS_DNS_TTL_FLOOR_DEFAULT. Was padding: the shape is unchanged. */
	__u16 dns_ttl_floor;
};
EGRESS_ABI_SIZE(egress_target_config, 8);

/* Longest child cgroup name a watch instance can match: a longer name is
 * read cut short, matches no entry and is left to the target's own
 * instance (egressd refuses to watch such a name). */
#define EGRESS_WATCH_NAME_MAX 128

/* watch_names: {watched parent's cgroup id, child directory name} -> target
 * id. The name is NUL-padded (bpf_probe_read_kernel_str leaves the rest of
 * the zeroed key zero). */
struct egress_watch_key {
	__u64 parent_cgroup_id;
	char name[EGRESS_WATCH_NAME_MAX];
};
EGRESS_ABI_SIZE(egress_watch_key, 136);

enum {
	EGRESS_WATCH_NAMES = 0,	   /* unit/path parent: unnamed children pass */
	EGRESS_WATCH_WORKLOAD = 1, /* unclassified children get the default */
};

/* watch_parents: watched parent's cgroup id -> what its watch instance does
 * with a child that neither map names. */
struct egress_watch_parent {
	__u32 default_target; /* EGRESS_TARGET_UNCLASSIFIED_* (workload) */
	__u8 kind;	      /* EGRESS_WATCH_* */
	__u8 pad[3];
};
EGRESS_ABI_SIZE(egress_watch_parent, 8);

/* port_classes: LPM trie. Data after prefixlen is 64 bits; prefixlen is
 * 48 + the number of leading port bits the entry fixes. */
struct egress_port_key {
	__u32 prefixlen;
	__u32 ruleset;
	__u8 proto; /* IPPROTO_TCP / IPPROTO_UDP */
	__u8 pad;
	__be16 port;
};
EGRESS_ABI_SIZE(egress_port_key, 12);
#define EGRESS_PORT_KEY_FIXED_BITS 48

struct egress_port_value {
	__u16 port_class; /* 1 .. 0xfffe */
	__u16 pad;
};
EGRESS_ABI_SIZE(egress_port_value, 4);

/* rules: LPM trie. Data after prefixlen is 192 bits;
 * prefixlen is 64 + the CIDR prefix length. IPv4 addresses use the first 4
 * bytes of addr, the rest zero. port_class is big-endian so that the trie
 * compares it as written. */
struct egress_rule_key {
	__u32 prefixlen;
	__u32 ruleset;
	__u8 proto; /* IPPROTO_TCP, IPPROTO_UDP, IPPROTO_ICMP, IPPROTO_ICMPV6 */
	__u8 family;	   /* EGRESS_FAMILY_* */
	__be16 port_class; /* from port_classes, or EGRESS_PORT_CLASS_ANY */
	__u8 addr[16];
};
EGRESS_ABI_SIZE(egress_rule_key, 28);
#define EGRESS_RULE_KEY_FIXED_BITS 64

struct egress_rule_value {
	__u32
	    rule_id; /* stable id of the user's rule, for events and counters */
	__u8 verdict; /* EGRESS_VERDICT_ALLOW or EGRESS_VERDICT_DENY */
	/* Name entries only (family EGRESS_FAMILY_NAME; 0 elsewhere): where
	 * the address entries of the tries that a connect this entry decides
	 * would also probe (its protocol; its port class and ANY) may deny,
	 * so that lib/names.h decides a learned address without the two trie
	 * lookups where none can (an explicit address deny must still win).
	 * Keyed by the ruleset like the entry itself, it is switched with the
	 * set: a flip never pairs one set's summary with another's tries.
	 * Was padding: the shape is unchanged; an entry of an egressd that
	 * wrote zeros has no EGRESS_RULE_F_DENY_SUMMARY, and the tries are
	 * probed as before. */
	__u8 flags;	      /* EGRESS_RULE_F_* */
	__u16 v4_deny_octets; /* bit (first octet % 16): an IPv4 deny entry
				 of a prefix in such an octet */
};
EGRESS_ABI_SIZE(egress_rule_value, 8);

/* egress_rule_value.flags */
enum {
	/* flags and v4_deny_octets summarize the address deny entries. */
	EGRESS_RULE_F_DENY_SUMMARY = 1 << 0,
	/* An IPv6 address deny entry exists (IPv6 is not summarized). */
	EGRESS_RULE_F_V6_DENY = 1 << 1,
};

/* exact_rules: hash. A tcp/udp destination (address and port) of a
 * ruleset that one entry decides (see the top of this file). IPv4
 * addresses use the first 4 bytes of addr, the rest zero; names
 * (EGRESS_FAMILY_NAME) the pattern id's 8 bytes, the rest zero. Value:
 * struct egress_rule_value. */
struct egress_exact_key {
	__u32 ruleset;
	__u8 proto;  /* IPPROTO_TCP / IPPROTO_UDP */
	__u8 family; /* EGRESS_FAMILY_IPV4 / _IPV6 / _NAME */
	__be16 port;
	__u8 addr[16];
};
EGRESS_ABI_SIZE(egress_exact_key, 24);

/* unix_rules: hash. A unix socket address as the caller passed it, under
 * the ruleset of its target (switched with the other rule maps). len counts
 * the significant bytes of path: a pathname up to its first NUL, an
 * abstract name (path[0] == 0) all addrlen - 2 bytes. path is zero past
 * len; sun_path holds at most 108 bytes, the 4 more keep the key aligned. */
#define EGRESS_UNIX_PATH_MAX 108
#define EGRESS_UNIX_PATH_BYTES 112
struct egress_unix_key {
	__u32 ruleset;
	__u32 len;
	__u8 path[EGRESS_UNIX_PATH_BYTES];
};
EGRESS_ABI_SIZE(egress_unix_key, 120);
/* Value: struct egress_rule_value (rule id and verdict). */

/* udp_peers: LRU hash. A peer that sent a datagram to a UDP socket of a
 * target (seen by recvmsg4/6) may be answered from that same socket, in that
 * socket's network namespace: the socket's cookie ties the entry to it (on
 * kernels before 5.10, whose socket cookies are counted per namespace, with
 * the namespace's cookie), so a peer made up in a private namespace (or fed
 * to another socket) opens nothing.
 * IPv4 peers are stored in the first 4 bytes of addr. */
struct egress_peer_key {
	__u64 netns_cookie; /* of the socket's netns; 0 on Linux 5.10+ */
	__u64 sock_cookie;  /* bpf_get_socket_cookie() of the socket */
	__u32 target_id;
	__u8 family;
	__u8 pad;
	__be16 local_port;
	__be16 peer_port;
	__u16 pad2;
	__u8 addr[16];
	__u32 pad3;
};
EGRESS_ABI_SIZE(egress_peer_key, 48);

struct egress_peer_value {
	__u64 last_seen_ns;
};
EGRESS_ABI_SIZE(egress_peer_value, 8);

/*
 * udp_peer_filter: in front of udp_peers for the recvmsg hooks only
 * (peers.h): which {socket, target, peer generation (peer_gens), local
 * port, peer} were found or recorded in udp_peers in the current epoch, so
 * that the datagram of a known peer costs a hash and one cache line instead
 * of a udp_peers lookup (a 48-byte key's hash and, with many peers, cache and
 * TLB misses in a map of 262,144 preallocated entries). One array for every
 * socket of every target: sets of one cache line, 8 ways each, 262,144
 * ways in 2 MiB. A way holds a 49-bit fingerprint of a hash of all of the
 * above and the epoch, the low 8 bits of its epoch, and bit 63 set (0
 * is an empty way). It only ever spares a refresh: the reply path reads
 * udp_peers alone, so no content of the filter can let a peer be answered.
 * A fingerprint shared by two peers of one set in one epoch (an epoch is a
 * few seconds, peers.h; about 8 in 2^49 per datagram) spares the second a
 * refresh in that epoch, or delays its recording to its first datagram of
 * the next epoch.
 */
#define EGRESS_PEER_FILTER_SET_BITS 15
#define EGRESS_PEER_FILTER_SETS (1 << EGRESS_PEER_FILTER_SET_BITS)
#define EGRESS_PEER_FILTER_WAYS 8
/* The fingerprint: the hash's low 49 bits (the set is its top 15). */
#define EGRESS_PEER_FILTER_PRINT_MASK ((1ULL << 49) - 1)

struct egress_peer_filter_set {
	__u64 way[EGRESS_PEER_FILTER_WAYS];
};
EGRESS_ABI_SIZE(egress_peer_filter_set, 64);

/* counters: BPF_MAP_TYPE_PERCPU_ARRAY indexed by target id; summed by the
 * daemon. Exact even when the ring buffer is full. */
/* Indexes of egress_counters.by_proto. */
enum {
	EGRESS_CTR_ALLOWED = 0,
	EGRESS_CTR_DENIED = 1,
	EGRESS_CTR_AUDITED = 2,
	EGRESS_CTR_REPLIES = 3,
	EGRESS_CTR_KINDS = 4,
};
enum {
	EGRESS_CTR_TCP = 0,
	EGRESS_CTR_UDP = 1,
	EGRESS_CTR_ICMP = 2,
	EGRESS_CTR_OTHER = 3,
	EGRESS_CTR_UNIX = 4, /* unix connect/sendmsg (decided ones only) */
	EGRESS_CTR_PROTOS = 5,
};

struct egress_counters {
	/* The next four are sums of by_proto, filled in by egressd when it
	 * reads the map; BPF leaves them 0 (one counter per decision). */
	__u64 allowed;		 /* decisions allowed by a rule */
	__u64 denied;		 /* connect/sendmsg/ping refused */
	__u64 audited;		 /* would have been refused (audit mode) */
	__u64 replies;		 /* UDP replies allowed via udp_peers */
	__u64 sockets_denied;	 /* socket creation refused */
	__u64 srcroute_denied;	 /* setsockopt refusals + dropped packets */
	__u64 events_lost;	 /* ring buffer reservation failures */
	__u64 events_suppressed; /* records held back by the rate limit */
	/* Every decision by kind and protocol: [EGRESS_CTR_ALLOWED..][TCP..] */
	__u64 by_proto[EGRESS_CTR_KINDS][EGRESS_CTR_PROTOS];
	__u64 flows_opened;	   /* TCP connections established (sock_ops) */
	__u64 flows_closed;	   /* ... of those, closed */
	__u64 flows_unexplained;   /* active opens no rule allows */
	__u64 flow_bytes_sent;	   /* of closed flows */
	__u64 flow_bytes_received; /* of closed flows */
	/* udp_peers entries this target's recvmsg hooks made (a new peer
	 * inserted), and insertions that failed for another reason than a
	 * peer recorded meanwhile. The LRU tells nobody what it evicts:
	 * egressd derives a target's evictions as recorded - deleted by
	 * egressd - entries still in udp_peers (PeerEvictions). */
	__u64 peers_recorded;
	__u64 peers_not_recorded;
	/* Decisions rule_hits could not count: the map was full (its
	 * 65,536 {target, rule} keys taken). Was reserved: programs of before
	 * leave it 0, so the map's shape and the ABI version are unchanged. */
	__u64 rule_hits_not_counted;
};
EGRESS_ABI_SIZE(egress_counters, 288);

/* rule_hits: per-CPU hash. Decisions per rule; rule_id 0 = default deny. */
struct egress_rule_hit_key {
	__u32 target_id;
	__u32 rule_id;
};
EGRESS_ABI_SIZE(egress_rule_hit_key, 8);

/* event_limits: array of sets, the per (target, destination, verdict, hook)
 * record rate limit: at most EGRESS_EVENTS_PER_WINDOW records per window of
 * EGRESS_EVENT_WINDOW_UNITS << EGRESS_EVENT_WINDOW_SHIFT ns (999.3 ms); the
 * rest are counted and the count rides on the next record for the key, or
 * on a held_back record of egressd's sweep (limits_sweep.bpf.c).
 * A set-associative table: a key's hash picks one set of
 * EGRESS_EVENT_LIMIT_WAYS slots (bpf/lib/ratelimit.h, limit__admit); a set is
 * one 64-byte cache line. EGRESS_MAX_EVENT_LIMITS (slots in all) is a power
 * of two. */
#define EGRESS_EVENT_WINDOW_SHIFT 20 /* window clock: ns >> 20 (1.05 ms) */
#define EGRESS_EVENT_WINDOW_UNITS 953
#define EGRESS_EVENTS_PER_WINDOW 5
#define EGRESS_MAX_EVENT_LIMITS 16384
#define EGRESS_EVENT_LIMIT_WAYS 2
/* egress_limit_slot.state, one word so that one atomic exchange starts a
 * window and takes the pending count: the window's start (ktime ns >>
 * EGRESS_EVENT_WINDOW_SHIFT, 32 bits) << 32 | records emitted in the window
 * << 29 | records held back and not yet reported (29 bits). */
#define EGRESS_LIMIT_WINDOW_SHIFT 32
#define EGRESS_LIMIT_EMITTED_SHIFT 29
#define EGRESS_LIMIT_SUPPRESSED_MASK ((1ULL << EGRESS_LIMIT_EMITTED_SHIFT) - 1)
struct egress_limit_key {
	__u16 target_id; /* < EGRESS_MAX_TARGETS */
	__u8 family;
	__u8 proto;
	__be16 port;
	__u8 verdict;
	__u8 hook;
	__u8 addr[16];
};
EGRESS_ABI_SIZE(egress_limit_key, 24);

struct egress_limit_slot {
	struct egress_limit_key key; /* the key that holds the slot */
	__u64 state;		     /* window start, emitted, suppressed */
};
EGRESS_ABI_SIZE(egress_limit_slot, 32);

struct egress_limit_set {
	struct egress_limit_slot way[EGRESS_EVENT_LIMIT_WAYS];
};
EGRESS_ABI_SIZE(egress_limit_set, 64);

/* The context of the sweep program (limits_sweep.bpf.c), given and read
 * back with BPF_PROG_TEST_RUN: sweeps sets [first_set, first_set + sets)
 * of event_limits and reports what it did. */
struct egress_sweep_args {
	__u32 first_set;
	__u32 sets;
	__u32 records;	/* out: EGRESS_EVENT_HELD_BACK records submitted */
	__u32 reported; /* out: held-back decisions they carry */
	__u32 raced; /* out: slots changed under the sweep (left for later) */
	__u32 ring_full; /* out: 1 when the ring buffer had no room (stopped) */
};
EGRESS_ABI_SIZE(egress_sweep_args, 24);

/* The context of the clock probe (clock_probe.bpf.c), read back with
 * BPF_PROG_TEST_RUN: the kernel's jiffies and its bpf_ktime_get_ns() clock
 * read together, from which egressd maps one onto the other
 * (kernel/jiffies_clock.h), and the programs' jiffies-derived clock
 * (lib/clock.h) read beside them. Not a pinned map: no ABI version. */
struct egress_clock_sample {
	__u64 jiffies;	      /* out: bpf_jiffies64(), read first */
	__u64 ktime_ns;	      /* out: bpf_ktime_get_ns(), read next */
	__u64 derived_ns;     /* out: clock__now() with the probe's mapping,
			       * read before a second ktime_ns_after */
	__u64 ktime_ns_after; /* out: bpf_ktime_get_ns() after derived_ns */
};
EGRESS_ABI_SIZE(egress_clock_sample, 32);

/* flows: socket storage of a TCP connection seen established by sock_ops
 * whose flow has records (flow__admit), for the closed record. One socket
 * can be a flow of two targets, nested (a unit target inside a slice
 * target): each target's program keeps its flow in a slot of its own, which
 * names the target (`owner`), so that each closed record carries its own
 * target's rule and none is taken by the other's.
 *
 * The layout is the one of before slots, whose pinned map outlives an
 * upgrade: slot 0 keeps the fields' old places (start_ns, rule_id, verdict,
 * recorded) and takes its owner from the padding; slot 1 lives in two words
 * that programs since flow__bytes leave zero. A socket whose storage an
 * older program made reads as slot 0 with owner 0: its closed record goes
 * out under the target that sees the close, as before. */
struct egress_flow {
	__u64 start_ns;
	__u64 start_ns1; /* slot 1 (was base_acked) */
	/* slot 1 (was base_received) */
	__u32 rule_id1;
	__u16 owner1;
	__u8 verdict1;
	__u8 recorded1;
	__u32 rule_id;
	__u8 verdict;	   /* EGRESS_VERDICT_ALLOW or _UNEXPLAINED */
	__u8 direction;	   /* EGRESS_DIR_*, the socket's: both slots' */
	__u8 fin_sent;	   /* unused since flow__bytes */
	__u8 fin_received; /* unused since flow__bytes */
	/* The established record went out (logging level and rate limit let
	 * it through): the closed record goes out too, and only then. */
	__u8 recorded;
	__u8 pad0;
	__u16 owner; /* slot 0's target id; 0 in an older program's storage */
	__u8 pad[4];
};
EGRESS_ABI_SIZE(egress_flow, 40);

/*
 * udp_connects: socket storage of a UDP socket that connect()ed under a
 * target in audit mode (bpf/lib/udp_connect.h). A UDP connect() sends
 * nothing: glibc's getaddrinfo() connects a UDP socket to each address a
 * name resolved to only to read the source address it would get (RFC 6724
 * sorting). So the connect's record is held here and goes out with the
 * first datagram the socket sends to that destination (cgroup_skb/egress),
 * or never. The task fields are the connecting task's, taken at connect as
 * a connect's record has them. One slot per target (two: a target and one
 * nested in it), each naming its target (`owner`, 0 = free); a slot of a
 * target whose record is not wanted (an allow at `logging denied`) is
 * freed by its connect.
 */
struct egress_udp_connect_slot {
	__u32 rule_id;
	__u16 owner;  /* target id; 0 = free */
	__u8 verdict; /* EGRESS_VERDICT_ALLOW or _AUDIT */
	__u8 reason;  /* EGRESS_REASON_* */
};
EGRESS_ABI_SIZE(egress_udp_connect_slot, 8);

struct egress_udp_connect {
	__u64 cgroup_id; /* of the connecting task */
	__u32 pid;
	__u32 tgid;
	__u32 uid;
	__u8 addr[16]; /* destination as decided; IPv4 in the first 4 bytes */
	__be16 port;
	__u8 family; /* EGRESS_FAMILY_IPV4 / _IPV6 (IPv4-mapped is IPV4) */
	__u8 hook;   /* EGRESS_HOOK_CONNECT4 / _CONNECT6 */
	char comm[16];
	struct egress_udp_connect_slot slot[2];
};
EGRESS_ABI_SIZE(egress_udp_connect, 72);

/* Ring buffer record: one per reported verdict or TCP flow transition. */
struct egress_event {
	__u64 ts_ns;	 /* bpf_ktime_get_ns() */
	__u64 cgroup_id; /* cgroup of the calling task (0 for packets, flows) */
	__u32 pid;	 /* thread id (0 when not in a task's context) */
	__u32 tgid;	 /* process id */
	__u32 uid;
	__u32 target_id;
	__u32 rule_id;	  /* 0 = default action */
	__u32 suppressed; /* records of this key held back before this one */
	__u8 addr[16];	  /* destination (remote); IPv4 in the first 4 bytes */
	__be16 port;	  /* destination (remote) port */
	__u8 family;	  /* EGRESS_FAMILY_* */
	__u8 proto;	  /* IPPROTO_* */
	__u8 hook;	  /* EGRESS_HOOK_* */
	__u8 verdict;	  /* EGRESS_VERDICT_* */
	__u8 reason;	  /* EGRESS_REASON_* */
	__u8 sock_type;	  /* SOCK_* for sock_create records */
	char comm[16];
	/* Flow records (kind != EGRESS_EVENT_VERDICT). */
	__u64 cookie;	      /* socket cookie: pairs established and closed */
	__u64 bytes_sent;     /* bytes acked by the peer */
	__u64 bytes_received; /* bytes received */
	__u64 duration_ns;    /* closed: since established */
	__u32 srtt_us;	      /* smoothed RTT */
	__u16 local_port;     /* host order */
	__u8 kind;	      /* EGRESS_EVENT_* */
	__u8 direction;	      /* EGRESS_DIR_* */
	/* Unix records (family EGRESS_FAMILY_UNIX) only: the address, as in
	 * egress_unix_key. Every other record is submitted without these
	 * (EGRESS_EVENT_INET_BYTES long), so that the common record does not
	 * pay for a path; readers zero what a short record lacks. */
	__u32 path_len;
	__u32 pad_path;
	__u8 path[EGRESS_UNIX_PATH_BYTES];
};
EGRESS_ABI_SIZE(egress_event, 240);
#define EGRESS_EVENT_INET_BYTES 120
#ifdef __cplusplus
static_assert(__builtin_offsetof(struct egress_event, path_len) ==
		  EGRESS_EVENT_INET_BYTES,
	      "egress_event: the unix tail must start where inet records end");
#else
_Static_assert(__builtin_offsetof(struct egress_event, path_len) ==
		   EGRESS_EVENT_INET_BYTES,
	       "egress_event: the unix tail must start where inet records end");
#endif

#endif /* EGRESS_ABI_H_ */
