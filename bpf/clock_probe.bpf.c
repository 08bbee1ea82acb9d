/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The clock probe egressd runs with BPF_PROG_TEST_RUN at its start
 * (kernel/jiffies_clock.cc) to map jiffies onto the bpf_ktime_get_ns()
 * clock, and tests run with a mapping set to check lib/clock.h. Never
 * attached; no maps.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "egress/abi.h"
#include "lib/clock.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* jiffies first: a delay between the two reads makes ktime_ns later, never
 * earlier, so the earliest ktime_ns - jiffies * tick over many samples is
 * the one nearest a tick edge. */
SEC("syscall")
int clock_sample(struct egress_clock_sample *s)
{
	__u64 j = bpf_jiffies64();
	__u64 t = bpf_ktime_get_ns();
	__u64 derived = clock__now();
	__u64 after = bpf_ktime_get_ns();

	s->jiffies = j;
	s->ktime_ns = t;
	s->derived_ns = derived;
	s->ktime_ns_after = after;
	return 0;
}
