/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Bench-only: a program for every hook egress attaches, named as in
 * egress.bpf.c, each letting everything through at once. egress_bench
 * attaches them to a cgroup of their own to measure the floor of the hooks
 * themselves (the kernel's cost of running any program there), beside
 * egress and the nftables alternatives (bench/empty_hooks.h).
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

SEC("cgroup/sock_create")
int egress_sock_create(struct bpf_sock *ctx) { return 1; }

SEC("cgroup/setsockopt")
int egress_setsockopt(struct bpf_sockopt *ctx) { return 1; }

SEC("cgroup/recvmsg4")
int egress_recvmsg4(struct bpf_sock_addr *ctx) { return 1; }

SEC("cgroup/recvmsg6")
int egress_recvmsg6(struct bpf_sock_addr *ctx) { return 1; }

SEC("cgroup/connect4")
int egress_connect4(struct bpf_sock_addr *ctx) { return 1; }

SEC("cgroup/connect6")
int egress_connect6(struct bpf_sock_addr *ctx) { return 1; }

SEC("cgroup/sendmsg4")
int egress_sendmsg4(struct bpf_sock_addr *ctx) { return 1; }

SEC("cgroup/sendmsg6")
int egress_sendmsg6(struct bpf_sock_addr *ctx) { return 1; }

SEC("cgroup_skb/egress")
int egress_skb_egress(struct __sk_buff *skb) { return 1; }

SEC("cgroup_skb/ingress")
int egress_skb_ingress(struct __sk_buff *skb) { return 1; }

/* Asks for no callback: what is left are the ones TCP makes whatever the
 * program asks (timeout and window init, ECN, connect, established). */
SEC("sockops")
int egress_sock_ops(struct bpf_sock_ops *ctx) { return 1; }

/* Typed by PrepareUnixPrograms (userspace/kernel/unix_hooks.h), as for
 * egress.bpf.c: bookworm's libbpf does not know these section names. */
SEC("cgroup/connect_unix")
int egress_connect_unix(struct bpf_sock_addr *ctx) { return 1; }

SEC("cgroup/sendmsg_unix")
int egress_sendmsg_unix(struct bpf_sock_addr *ctx) { return 1; }
