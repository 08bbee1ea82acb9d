/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The DNS answer parser's ABI: what bpf/lib/dns.h produces and what the C++
 * reference parser (userspace/dns) is compared against. Included by BPF C
 * (clang -target bpf) and by userspace C++; the only definition of these
 * types. Same rules as abi.h: fixed-width fields, explicit padding, every
 * struct size-asserted. docs/dns.md states the parse these types describe.
 *
 * Nothing here is pinned yet: the DNS types change no pinned map, so
 * EGRESS_ABI_VERSION is untouched.
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

#endif /* EGRESS_DNS_ABI_H_ */
