/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The DNS answer parser's ABI: what bpf/lib/dns.h produces and what the C++
 * reference parser (userspace/dns) is compared against. Included by BPF C
 * (clang -target bpf) and by userspace C++; the only definition of these
 * types. Same rules as abi.h: fixed-width fields, explicit padding, every
 * struct size-asserted. docs/dns.md states the parse these types describe.
 *
 * The learning maps (dns_queries, dns_names, dns_bindings, dns_counters,
 * dns_scratch) came as new pinned maps under ABI 4: no existing map changed
 * shape, so EGRESS_ABI_VERSION stayed. Name rules' entries in exact_rules
 * (family EGRESS_FAMILY_NAME, keyed by pattern id) changed what the pinned
 * maps hold: version 8 programs would not look for them there, so they
 * came with ABI 9 (abi.h). A binding is keyed by the network namespace of
 * the socket its answer reached since ABI 11 (egress_dns_binding_key).
 */
#ifndef EGRESS_DNS_ABI_H_
#define EGRESS_DNS_ABI_H_

#include "egress/abi.h"

/* The parser reads at most the first EGRESS_DNS_MAX_VIEW bytes of a
 * message. Header, question and answer section must lie within them; the
 * authority and additional sections are never read, so a longer message
 * whose answers fit is parsed in full. A power of two (used as a mask). */
#define EGRESS_DNS_MAX_VIEW 2048
/* Answer sections with more records yield nothing (TOO_MANY_ANSWERS). Also
 * the capacity of the address array: every address is one answer record. */
#define EGRESS_DNS_MAX_ANSWERS 32
/* Compression pointers followed while reading one name. */
#define EGRESS_DNS_MAX_POINTERS 64
/* A name in text form: at most 253 characters, NUL, zero padding. */
#define EGRESS_DNS_NAME_BYTES 256
/* Longest name on the wire, length octets and root label included. */
#define EGRESS_DNS_MAX_WIRE_NAME 255
#define EGRESS_DNS_HEADER_BYTES 12

/* Wire values the parser knows. */
#define EGRESS_DNS_CLASS_IN 1
#define EGRESS_DNS_TYPE_A 1
#define EGRESS_DNS_TYPE_CNAME 5
#define EGRESS_DNS_TYPE_AAAA 28

/* Every message maps to exactly one of these (egress_dns_outcome.reason).
 * OK: a typed answer (possibly with no address: NODATA, or an rcode other
 * than NOERROR). Every other value: the first problem met, reading the
 * message front to back; the message yields nothing. */
enum {
	EGRESS_DNS_OK = 0,
	EGRESS_DNS_TRUNCATED = 1,    /* a field or label runs past the end */
	EGRESS_DNS_TOO_LONG = 2,     /* ... past the view of a longer message */
	EGRESS_DNS_NOT_RESPONSE = 3, /* QR bit clear */
	EGRESS_DNS_OPCODE = 4,	     /* opcode other than QUERY */
	EGRESS_DNS_TC = 5,	     /* TC set: the client will retry */
	EGRESS_DNS_QDCOUNT = 6,	     /* not exactly one question */
	EGRESS_DNS_LABEL_TOO_LONG = 7,	 /* length octet 64..191 */
	EGRESS_DNS_NAME_TOO_LONG = 8,	 /* more than 255 octets on the wire */
	EGRESS_DNS_NAME_CHAR = 9,	 /* not a letter, digit, '-' or '_' */
	EGRESS_DNS_POINTER_FORWARD = 10, /* to itself, later or past the end */
	EGRESS_DNS_POINTER_LOOP = 11,	 /* into the run that contains it */
	EGRESS_DNS_TOO_MANY_POINTERS = 12, /* > EGRESS_DNS_MAX_POINTERS */
	EGRESS_DNS_QCLASS = 13,		   /* question class not IN */
	EGRESS_DNS_QTYPE = 14,		   /* question type not A or AAAA */
	EGRESS_DNS_TOO_MANY_ANSWERS = 15,  /* ANCOUNT > MAX_ANSWERS */
	EGRESS_DNS_RECORD_CLASS = 16, /* an answer record not of class IN */
	EGRESS_DNS_RDLENGTH =
	    17, /* A not 4, AAAA not 16, CNAME name != RDATA */
	EGRESS_DNS_REASON_COUNT = 18,
};

/* One address the answer binds to the question's name. */
struct egress_dns_addr {
	__u8 addr[16]; /* A: the first 4 bytes, the rest zero */
	__u32 ttl;     /* seconds; a TTL above 2^31-1 reads as 0 (RFC 2181) */
};
EGRESS_ABI_SIZE(egress_dns_addr, 20);

/* What the parse of one message yields. Only reason is meaningful unless
 * it is EGRESS_DNS_OK. Names are in text form: lower case, labels joined by
 * '.', no trailing dot ("" is the root), NUL-terminated and zero-padded. */
struct egress_dns_outcome {
	__u8 reason;  /* EGRESS_DNS_* */
	__u8 rcode;   /* flags & 0xf; answers are read only when 0 */
	__u8 naddrs;  /* entries used in addrs */
	__u8 ncnames; /* CNAME records followed from the question */
	__u16 id;     /* transaction id */
	__u16 flags;  /* header flags word, host order */
	__u16 qtype;  /* EGRESS_DNS_TYPE_A or _AAAA; addresses are of it */
	__u16 pad[3];
	char qname[EGRESS_DNS_NAME_BYTES];
	char cname[EGRESS_DNS_NAME_BYTES]; /* last name of the chain, or "" */
	struct egress_dns_addr addrs[EGRESS_DNS_MAX_ANSWERS];
};
EGRESS_ABI_SIZE(egress_dns_outcome, 1168);

/* Kernel-only: the parser's working memory, with the outcome at its head.
 * Too large for the BPF stack, so callers keep it in a map value (a
 * PERCPU_ARRAY in programs that run concurrently). Here so that maps can
 * name it and its size is asserted. */
struct egress_dns_scratch {
	struct egress_dns_outcome out;
	__u8 msg[EGRESS_DNS_MAX_VIEW];	  /* the message's first view bytes */
	char name[EGRESS_DNS_NAME_BYTES]; /* the name being read */
	__u32 len;			  /* the message's full length */
	__u32 view;			  /* bytes of it in msg */
	__u32 pos;			  /* the next answer record */
	/* The name reader: */
	__u32 npos;  /* next octet to read */
	__u32 run;   /* where the current run of labels starts */
	__u32 end;   /* octet after the name where it was written; 0 unset */
	__u32 wire;  /* wire octets so far */
	__u32 tlen;  /* text characters so far */
	__u32 left;  /* characters left in the current label */
	__u32 jumps; /* pointers followed */
	__u32 done;  /* the root label was read */
	__u32 pad;
};
EGRESS_ABI_SIZE(egress_dns_scratch, 3520);

/* ---- Learning: queries, name rules, bindings (docs/dns.md) ---- */

#define EGRESS_DNS_PORT 53
/* A learned address stays bound at least this long (seconds) unless the
 * target's config sets another floor. */
#define EGRESS_DNS_TTL_FLOOR_DEFAULT 30
/* Queries in flight remembered (LRU: the oldest unanswered go first). */
#define EGRESS_DNS_MAX_QUERIES 16384
/* Queries one target may have remembered per window of 2^30 ns (1.07 s).
 * dns_queries is shared by every target: without a share, one target
 * flooding its resolver would push other targets' pending queries out, and
 * their answers would then bind nothing. At this rate one flooding target
 * takes 8 windows (8.6 s) to cycle the whole map, far longer than an answer
 * takes; a query over the rate is sent as usual but not remembered (its
 * answer binds nothing: that target's lookup fails closed), and counted
 * (egress_dns_counters.queries_over_rate). */
#define EGRESS_DNS_QUERIES_PER_WINDOW 2048
#define EGRESS_DNS_QUERY_WINDOW_SHIFT 30
/* Addresses bound, over all targets and names. A hash, not an LRU: a full
 * map refuses a binding and counts it (egress_dns_counters.full), it never
 * silently drops another. Every name can hold 1,000 addresses and more as
 * long as the total is not reached. */
#define EGRESS_DNS_MAX_BINDINGS 65536
/* Name rule patterns over all rulesets (entries of dns_names). */
#define EGRESS_DNS_MAX_NAME_ENTRIES 65536
/* Sweeping. An entry of dns_bindings whose slots all expired at least
 * EGRESS_DNS_DEAD_NS ago is dead: the kernel never writes into it in place
 * again, it replaces it whole (one atomic map update). egressd deletes the
 * entries dead for EGRESS_DNS_SWEEP_NS (lookup-and-delete, so what it took
 * is what it checks; one found renewed meanwhile is put back). An in-place
 * write the sweep could lose would have to take longer than the difference
 * (5 s) inside one softirq. Connections are decided at connect, so no sweep
 * cuts one. */
#define EGRESS_DNS_DEAD_NS (5ULL * 1000000000ULL)
#define EGRESS_DNS_SWEEP_NS (10ULL * 1000000000ULL)
/* Patterns one address can be bound to at once (e.g. api.example.com and
 * *.example.com); a further one is refused and counted as full. */
#define EGRESS_DNS_BINDING_SLOTS 4
/* Name rules a name can match at once (exact, then wildcards from the most
 * specific); the lookup stops after this many. */
#define EGRESS_DNS_MAX_MATCHES EGRESS_DNS_BINDING_SLOTS
/* The reversed name in a dns_names key: rule names are at most 251
 * characters (the exact form needs its terminating NUL in the key). */
#define EGRESS_DNS_RULE_NAME_BYTES 252
#define EGRESS_DNS_MAX_RULE_NAME (EGRESS_DNS_RULE_NAME_BYTES - 1)

/* dns_queries: LRU hash. A DNS query a target's socket sent to port 53:
 * the answer counts only if it arrives on the same socket, from the same
 * server address and port, to the same local port, with the same
 * transaction id and the same question. */
struct egress_dns_query_key {
	__u64 sock_cookie; /* bpf_get_socket_cookie() of the sending socket */
	__u32 target_id;
	__u16 id;	    /* transaction id, host order */
	__be16 local_port;  /* the client's port */
	__be16 server_port; /* 53 */
	__u8 family;	    /* EGRESS_FAMILY_IPV4 / _IPV6 of the packet */
	__u8 proto;	    /* IPPROTO_UDP / IPPROTO_TCP */
	__u32 pad;
	__u8 server[16]; /* the resolver; IPv4 in the first 4 bytes */
};
EGRESS_ABI_SIZE(egress_dns_query_key, 40);

struct egress_dns_query {
	__u64 sent_ns;
	__u16 qtype;
	/* A rule of the target allowed the query's destination when it left
	 * (answers of other resolvers are ignored, counted as such). */
	__u8 resolver_allowed;
	__u8 pad[5];
	char qname[EGRESS_DNS_NAME_BYTES]; /* text form, zero-padded */
};
EGRESS_ABI_SIZE(egress_dns_query, 272);

/* dns_names: LPM trie. The name rules of a ruleset, keyed by the rule name
 * written backwards, character by character, so that the trie's longest
 * prefix match finds the most specific rule: "api.example.com" is
 * "moc.elpmaxe.ipa" + NUL (the NUL makes it exact), "*.example.com" is
 * "moc.elpmaxe." (any name strictly below). prefixlen is 32 (the ruleset)
 * + 8 x the bytes of name that count. */
struct egress_dns_name_key {
	__u32 prefixlen;
	__u32 ruleset;
	char name[EGRESS_DNS_RULE_NAME_BYTES];
};
EGRESS_ABI_SIZE(egress_dns_name_key, 260);
#define EGRESS_DNS_NAME_KEY_FIXED_BITS 32

struct egress_dns_name_value {
	/* The rule name's pattern id: stable across rulesets and restarts
	 * (FNV-1a 64 of its text, never 0), so bindings outlive a rule switch
	 * that keeps the name. rules entries of family EGRESS_FAMILY_NAME
	 * carry it in addr. */
	__u64 pattern;
	__u32 prefixlen; /* the entry's own prefixlen, to look for shorter */
	__u32 pad;
};
EGRESS_ABI_SIZE(egress_dns_name_value, 16);

/* dns_bindings: hash. An address a target learned from an answer, with
 * the name rule patterns it was learned for and until when. netns_cookie:
 * the network namespace of the socket the answer reached, and the only one
 * whose connects the binding allows. A process of the target can make a
 * namespace of its own (`unshare -Urn`), give its loopback the resolver's
 * address and answer its own query there with any address: that binding
 * must open nothing in the namespace the target's traffic leaves by. 0 on
 * kernels whose cgroup_skb programs cannot read a socket's namespace
 * (egress_netns_cookies, lib/config.h; docs/bypasses.md). */
struct egress_dns_binding_key {
	__u64 netns_cookie;
	__u32 target_id;
	__u8 family; /* EGRESS_FAMILY_IPV4 / _IPV6 */
	__u8 pad[3];
	__u8 addr[16]; /* IPv4 in the first 4 bytes */
};
EGRESS_ABI_SIZE(egress_dns_binding_key, 32);

/* dns_streams: socket storage of a target's TCP connection to port 53,
 * made at the SYN-ACK of the resolver: where in the resolver's byte stream
 * the next DNS message starts. A TCP segment is read as an answer only when
 * it starts exactly there (or, when a message's two-octet length came alone
 * at the end of the segment before, exactly where that message starts);
 * the lengths of the messages that start in a segment move `next` on. Any
 * other segment (a continuation, data out of order, a length split between
 * two segments) is never parsed: bytes inside a message (the text of a TXT
 * record) are never read as one. */
struct egress_dns_stream {
	__u32 isn;  /* the resolver's initial sequence number */
	__u32 next; /* stream offset of the next message's length */
	__u32
	    body; /* offset of a message whose length ended a segment; 0 none */
	__u16 body_len; /* ... and that length */
	__u8 synced;	/* 0: no SYN-ACK seen, or the boundaries were lost */
	__u8 pad;
};
EGRESS_ABI_SIZE(egress_dns_stream, 16);

struct egress_dns_binding_slot {
	__u64 pattern;	  /* 0 = free */
	__u64 expires_ns; /* bpf_ktime_get_ns() clock (connects read it
			   * from jiffies: lib/clock.h) */
};
EGRESS_ABI_SIZE(egress_dns_binding_slot, 16);

struct egress_dns_binding {
	struct egress_dns_binding_slot slot[EGRESS_DNS_BINDING_SLOTS];
};
EGRESS_ABI_SIZE(egress_dns_binding, 64);

/* dns_counters: per-CPU array indexed by target id, summed by egressd.
 * Every DNS message from port 53 to a target's socket is counted once in
 * answers and, unless it bound something, once under one ignored_* (or
 * answers_empty), so nothing is silent. */
struct egress_dns_counters {
	__u64 queries;		 /* queries remembered */
	__u64 answers;		 /* messages from port 53 seen */
	__u64 answers_matched;	 /* ... answering a remembered query */
	__u64 answers_empty;	 /* ... matched, rcode or no address */
	__u64 bindings;		 /* (address, pattern) bound or renewed */
	__u64 ignored_malformed; /* the parse failed: by_reason says why */
	__u64 ignored_no_query;	 /* no remembered query (forged, late) */
	__u64 ignored_resolver;	 /* the query went to a resolver no rule
				    allows */
	__u64 ignored_no_rule;	 /* no name rule covers the question */
	__u64 full;		 /* bindings refused: map or slots full */
	__u64 by_reason[EGRESS_DNS_REASON_COUNT];
	/* TCP segments from port 53 that do not start a message (a message's
	 * continuation, out of order, or a stream whose boundaries are not
	 * known): never parsed, and not counted in answers. */
	__u64 ignored_stream;
	/* Packets the target sent from port 53 of an address it may query as
	 * its resolver: refused (EGRESS_REASON_RESOLVER_SOURCE). */
	__u64 resolver_source;
	/* The query rate share (EGRESS_DNS_QUERIES_PER_WINDOW): the window
	 * (now >> EGRESS_DNS_QUERY_WINDOW_SHIFT, 32 bits) in the high word,
	 * the queries remembered in it in the low one. Kernel state, not a
	 * counter. Was reserved (zero): the shape is unchanged. */
	__u64 query_window;
	/* Queries over that rate: sent, not remembered. */
	__u64 queries_over_rate;
};
EGRESS_ABI_SIZE(egress_dns_counters, 256);

/* Kernel-only: the learning programs' working memory (dns_scratch, a
 * per-CPU array: slot 0 for queries on egress, 1 for answers on ingress,
 * so an answer handled in softirq never overwrites a query being read). */
struct egress_dns_learn {
	struct egress_dns_scratch parse;
	struct egress_dns_query query;
	struct egress_dns_name_key name_key;
	__u32 qlen; /* characters of the question's name */
	__u64 patterns[EGRESS_DNS_MAX_MATCHES];
	__u64 now_ns;
	__u64 floor_ns;
	__u32 npatterns;
	__u32 family;
};
EGRESS_ABI_SIZE(egress_dns_learn, 4112);

/* Ring buffer record of kind EGRESS_EVENT_DNS_ANSWER, emitted by skb_ingress
 * for a target in audit mode, for every answer that matches a query the
 * target sent (the same anti-forgery rule as bindings: same socket, server,
 * ports, transaction id and question), whatever its rules: egressd learns
 * which name each address was reached by (`egressctl suggest` proposes
 * domainNames rules from it). kind sits where egress_event keeps it, so the
 * reader tells the records apart by that byte (and the size). */
struct egress_dns_answer_event {
	__u64 ts_ns; /* bpf_ktime_get_ns() */
	__u32 target_id;
	__u16 qtype;	 /* EGRESS_DNS_TYPE_A / _AAAA: the addresses' family */
	__u8 naddrs;	 /* entries used in addrs */
	__u8 proto;	 /* IPPROTO_UDP / IPPROTO_TCP of the exchange */
	__u8 server[16]; /* the resolver; IPv4 in the first 4 bytes */
	__be16 server_port;
	__u8 server_family; /* EGRESS_FAMILY_IPV4 / _IPV6 */
	__u8 reserved[83];  /* zero */
	__u8 kind;	    /* EGRESS_EVENT_DNS_ANSWER */
	__u8 pad;
	char qname[EGRESS_DNS_NAME_BYTES]; /* the question, text form */
	struct egress_dns_addr addrs[EGRESS_DNS_MAX_ANSWERS];
};
EGRESS_ABI_SIZE(egress_dns_answer_event, 1016);
#ifdef __cplusplus
static_assert(__builtin_offsetof(struct egress_dns_answer_event, kind) ==
		  __builtin_offsetof(struct egress_event, kind),
	      "egress_dns_answer_event: kind must sit where egress_event's is");
#else
_Static_assert(
    __builtin_offsetof(struct egress_dns_answer_event, kind) ==
	__builtin_offsetof(struct egress_event, kind),
    "egress_dns_answer_event: kind must sit where egress_event's is");
#endif

#endif /* EGRESS_DNS_ABI_H_ */
