/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The clock a connect reads a learned address's expiry by, without a
 * helper call.
 *
 * What: clock__now(), the bpf_ktime_get_ns() clock (CLOCK_MONOTONIC) as
 * derived from bpf_ktime_get_ns()'s coarse sibling, the jiffies counter:
 * t0 + (jiffies - j0) * tick_ns, with the mapping egressd measured once at
 * its start (kernel/jiffies_clock.cc) and wrote into this .rodata between
 * open and load.
 * Why: a helper call costs 30-60 ns on a CPU whose returns are mitigated
 * (bench/README.md, names mode), and bpf_ktime_get_ns() is one, where the
 * x86-64 verifier inlines bpf_jiffies64() into a load. A binding's expiry
 * stays in the bpf_ktime_get_ns() clock (dns_abi.h), so the learning side,
 * sock_ops (which reads that clock anyway) and egressd's sweep are
 * unchanged.
 * Why it is sound: the kernel advances jiffies by one per TICK_NSEC
 * (the integer (10^9 + HZ/2) / HZ) of CLOCK_MONOTONIC
 * (tick_do_update_jiffies64), so with the same integer tick_ns the two
 * never drift apart; jiffies only lag, by a tick and the tick interrupt's
 * latency (longer while the jiffies update stalls, up to 5 ticks before
 * another CPU's tick does it). egressd puts t0 half a tick before the
 * earliest tick edge it saw, so the derived clock is not ahead of the real
 * one as long as one edge seen was less than half a tick late: a binding
 * does not expire early, and lives about one and a half ticks longer
 * (6 ms at HZ=250; the TTL floor is 30 s), more during a stall (a dead
 * entry still goes with egressd's sweep; docs/dns.md, with the
 * periodic-tick limit). The
 * mapping holds for the whole boot (a restart that adopts pinned programs
 * keeps theirs; bpffs does not outlive a reboot). tick_ns 0 (not
 * measured): the helper.
 */
#ifndef EGRESS_BPF_LIB_CLOCK_H_
#define EGRESS_BPF_LIB_CLOCK_H_

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

/* Set by egressd between open and load (kernel/jiffies_clock.h): the
 * kernel's tick in ns (0: not measured, read the helper), and the
 * bpf_ktime_get_ns() time t0_ns that jiffies j0 stands for. */
const volatile __u64 egress_clock_tick_ns = 0;
const volatile __u64 egress_clock_j0 = 0;
const volatile __u64 egress_clock_t0_ns = 0;

/* Now in the bpf_ktime_get_ns() clock, never ahead of it: from jiffies when
 * egressd measured the mapping (an inlined load; the verifier drops the
 * other branch, the values being constants), else the helper. */
static __always_inline __u64 clock__now(void)
{
	if (!egress_clock_tick_ns)
		return bpf_ktime_get_ns();
	return egress_clock_t0_ns +
	       (bpf_jiffies64() - egress_clock_j0) * egress_clock_tick_ns;
}

#endif /* EGRESS_BPF_LIB_CLOCK_H_ */
