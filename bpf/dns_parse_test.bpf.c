/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Test-only object: runs lib/dns.h on the UDP payload of a packet given with
 * BPF_PROG_TEST_RUN, so tests/privileged/dns_parse_fuzz_test.cc can compare
 * the kernel's parse with the C++ reference. Never attached to anything.
 *
 * The packet is IPv4 (any header length) or IPv6 (no extension headers),
 * then UDP; the DNS message is the rest of the packet. The outcome is left
 * in the global `dns` (.bss, read by the test through the skeleton), with
 * `runs` counting the programs run and `frame` saying whether the IP and
 * UDP headers were understood.
 */
#include <linux/bpf.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "egress/dns_abi.h"
#include "lib/dns.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

enum {
	FRAME_OK = 0,
	FRAME_NOT_IP = 1,
	FRAME_NOT_UDP = 2,
	FRAME_SHORT = 3,
};

struct egress_dns_scratch dns;
__u64 runs;
__u32 frame;
__u32 dns_len;

/* Length of the IP header when the packet is IP carrying UDP, else 0 with
 * `frame` saying why. */
static __always_inline __u32 ip_header_len(struct __sk_buff *skb)
{
	__u32 proto_at, len;
	__u8 first, proto;

	if (bpf_skb_load_bytes(skb, 0, &first, 1))
		goto short_frame;
	if ((first >> 4) == 4) {
		proto_at = offsetof(struct iphdr, protocol);
		len = (first & 0xf) * 4;
	} else if ((first >> 4) == 6) {
		proto_at = offsetof(struct ipv6hdr, nexthdr);
		len = sizeof(struct ipv6hdr);
	} else {
		frame = FRAME_NOT_IP;
		return 0;
	}
	if (bpf_skb_load_bytes(skb, proto_at, &proto, 1))
		goto short_frame;
	frame = proto == IPPROTO_UDP ? FRAME_OK : FRAME_NOT_UDP;
	return frame == FRAME_OK ? len : 0;
short_frame:
	frame = FRAME_SHORT;
	return 0;
}

SEC("cgroup_skb/ingress")
int dns_parse_test(struct __sk_buff *skb)
{
	__u32 off;

	runs++;
	dns_len = 0;
	off = ip_header_len(skb);
	if (!off)
		return 1;
	off += sizeof(struct udphdr);
	if (skb->len < off) {
		frame = FRAME_SHORT;
		return 1;
	}
	dns_len = skb->len - off;
	dns__parse(skb, off, dns_len, &dns);
	return 1;
}
