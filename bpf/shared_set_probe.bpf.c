/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Test-only: what a shared program set (one load serving every cgroup
 * target) would rely on, for tests/privileged/shared_set_storage_test.cc.
 *
 * One set of programs, attached to many cgroups, finds the target of the
 * attachment it runs for in a BPF_MAP_TYPE_CGROUP_STORAGE: the kernel keeps
 * one storage per (map, cgroup the program is attached to), hands the
 * running program the one of its own attachment (also when it runs for a
 * descendant cgroup), and userspace writes the target id into it by cgroup
 * id once the first program is attached. A key of only the cgroup id (no
 * attach type) makes every hook of the set at a cgroup share one storage.
 *
 * Every program notes the id it saw (seen[slot], a history of the low byte
 * of each id, newest last) and the connect/sendmsg programs decide by it:
 * an id of 0 (the storage is zero from the attach until userspace writes
 * it) denies, any other id allows what allowed[id] allows.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

struct {
	__uint(type, BPF_MAP_TYPE_CGROUP_STORAGE);
	__type(key, __u64);   /* cgroup id: one storage for every hook */
	__type(value, __u32); /* target id; 0: not written yet */
} attach_target SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, __u32); /* 1: this target may connect */
} allowed SEC(".maps");

/* Slots of seen, one per program. */
enum {
	SLOT_CONNECT4,
	SLOT_SENDMSG4,
	SLOT_RECVMSG4,
	SLOT_SOCK_CREATE,
	SLOT_SETSOCKOPT,
	SLOT_SKB_EGRESS,
	SLOT_SKB_INGRESS,
	SLOT_SOCK_OPS,
	SLOT_CONNECT_UNIX,
	SLOT_COUNT,
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SLOT_COUNT);
	__type(key, __u32);
	__type(value, __u64);
} seen SEC(".maps");

/* The target of the attachment this run belongs to, noted in seen[slot]. */
static __always_inline __u32 target_of_attachment(__u32 slot)
{
	__u32 *id = bpf_get_local_storage(&attach_target, 0);
	__u32 tid = *id;
	__u64 *s = bpf_map_lookup_elem(&seen, &slot);

	if (s)
		__sync_lock_test_and_set(s, (*s << 8) | (tid & 0xff));
	return tid;
}

/* 0 (unwritten) denies: fail closed. */
static __always_inline int decide(__u32 slot)
{
	__u32 tid = target_of_attachment(slot);
	__u32 *allow;

	if (tid == 0)
		return 0;
	allow = bpf_map_lookup_elem(&allowed, &tid);
	return allow && *allow == 1;
}

SEC("cgroup/connect4")
int probe_connect4(struct bpf_sock_addr *ctx) { return decide(SLOT_CONNECT4); }

SEC("cgroup/sendmsg4")
int probe_sendmsg4(struct bpf_sock_addr *ctx) { return decide(SLOT_SENDMSG4); }

SEC("cgroup/recvmsg4")
int probe_recvmsg4(struct bpf_sock_addr *ctx)
{
	target_of_attachment(SLOT_RECVMSG4);
	return 1;
}

SEC("cgroup/sock_create")
int probe_sock_create(struct bpf_sock *ctx)
{
	target_of_attachment(SLOT_SOCK_CREATE);
	return 1;
}

SEC("cgroup/setsockopt")
int probe_setsockopt(struct bpf_sockopt *ctx)
{
	target_of_attachment(SLOT_SETSOCKOPT);
	return 1;
}

SEC("cgroup_skb/egress")
int probe_skb_egress(struct __sk_buff *skb)
{
	target_of_attachment(SLOT_SKB_EGRESS);
	return 1;
}

SEC("cgroup_skb/ingress")
int probe_skb_ingress(struct __sk_buff *skb)
{
	target_of_attachment(SLOT_SKB_INGRESS);
	return 1;
}

SEC("sockops")
int probe_sock_ops(struct bpf_sock_ops *ctx)
{
	target_of_attachment(SLOT_SOCK_OPS);
	return 1;
}

/* libbpf 1.1 does not know this section: the test sets the program type
 * and attach type (EGRESS_ATTACH_CGROUP_UNIX_CONNECT). */
SEC("cgroup/connect_unix")
int probe_connect_unix(struct bpf_sock_addr *ctx)
{
	return decide(SLOT_CONNECT_UNIX);
}
