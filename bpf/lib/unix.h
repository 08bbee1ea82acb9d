/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Unix-socket rules: the address a connect_unix / sendmsg_unix program
 * sees, and its decision.
 *
 * What: unix__read_addr() (the sun_path the caller passed, as a
 * unix_rules key) and unix__decide() (the whole decision of a unix hook).
 * Why here: AF_UNIX has a hook set of its own (Linux 6.7+) whose address is
 * not in struct bpf_sock_addr at all; reading it takes a kfunc and the
 * kernel's own context type, which no inet hook needs.
 *
 * Semantics (docs/policy.md): an enforced target without unix rules is not
 * looked at (EGRESS_TF_UNIX_RULES clear: every unix operation passes,
 * uncounted). With unix rules, a matching deny refuses, a matching allow
 * lets through, and a path no rule names is refused when the target has an
 * allow-list (EGRESS_TF_UNIX_ALLOWLIST), else let through
 * (EGRESS_REASON_UNIX_UNLISTED). A target in audit mode is always looked
 * at, and its unlisted paths are recorded at every logging level but off,
 * so that learning sees the unix sockets a target uses before it has rules.
 * Paths match exactly, as the caller wrote them: the kernel runs the hook
 * before it resolves the path.
 */
#ifndef EGRESS_BPF_LIB_UNIX_H_
#define EGRESS_BPF_LIB_UNIX_H_

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "egress/abi.h"
#include "maps.h"
#include "lib/addr.h"
#include "lib/config.h"
#include "lib/verdict.h"

/* offsetof(struct sockaddr_un, sun_path) */
#define EGRESS_SUN_PATH_OFFSET 2

struct sockaddr;

/*
 * The kernel's context of a sock_addr program (include/linux/filter.h),
 * reached with bpf_cast_to_kern_ctx. Only the fields named here are read;
 * preserve_access_index has libbpf relocate their offsets against the
 * running kernel's BTF (CO-RE), so the layout need not match.
 */
struct bpf_sock_addr_kern {
	struct sockaddr *uaddr; /* the kernel's copy of the caller's address */
	__u32 uaddrlen;
} __attribute__((preserve_access_index));

/* Linux 6.2+. Weak: an object that never loads the unix programs (an older
 * kernel, see LoadAndPinPrograms) must still load without it. */
extern void *bpf_cast_to_kern_ctx(void *obj) __ksym __weak;

/*
 * Fills k->len and k->path with the address of the operation (k is zeroed
 * by the caller). The kernel checked addrlen (unix_validate_addr: 3..110)
 * before running the hook; it is checked again here for the verifier.
 * A pathname is significant up to its first NUL (the kernel terminates it
 * at addrlen, unix_mkname_bsd): bpf_probe_read_kernel_str stops there and
 * leaves the rest of the key zero. It is asked for one byte more than the
 * path may hold, so a path that fills sun_path is read whole; that byte is
 * still inside the kernel's sockaddr_storage copy. An abstract name
 * (leading NUL) is every byte up to addrlen. Returns 0, or -1 when the
 * address cannot be read.
 */
static __always_inline int unix__read_addr(struct bpf_sock_addr *ctx,
					   struct egress_unix_key *k)
{
	struct bpf_sock_addr_kern *sa = bpf_cast_to_kern_ctx(ctx);
	const char *sun_path;
	__u8 first = 0;
	__u32 n, size;
	long r;

	n = sa->uaddrlen;
	if (n <= EGRESS_SUN_PATH_OFFSET ||
	    n > EGRESS_SUN_PATH_OFFSET + EGRESS_UNIX_PATH_MAX)
		return -1;
	n -= EGRESS_SUN_PATH_OFFSET;
	/* Bounded again on the very register passed as a size: clang computed
	 * n + 1 from a copy made before the check above, which the verifier
	 * refused as an unbounded size. */
	size = n + 1;
	barrier_var(size);
	if (size > EGRESS_UNIX_PATH_MAX + 1)
		return -1;
	sun_path = (const char *)sa->uaddr + EGRESS_SUN_PATH_OFFSET;
	if (bpf_probe_read_kernel(&first, 1, sun_path))
		return -1;
	if (first) {
		r = bpf_probe_read_kernel_str(k->path, size, sun_path);
		if (r <= 0)
			return -1;
		k->len = (__u32)r - 1;
		return 0;
	}
	barrier_var(n);
	if (n > EGRESS_UNIX_PATH_MAX)
		return -1;
	if (bpf_probe_read_kernel(k->path, n, sun_path))
		return -1;
	k->len = n;
	return 0;
}

/* Folds the address into d's address words: the record rate limit keys on
 * them (lib/ratelimit.h), so each path is limited on its own. */
static __always_inline void unix__dest(struct egress_dest *d,
				       const struct egress_unix_key *k)
{
	const __u32 *w = (const __u32 *)k;
	__u64 h = 0;
	int i;

	d->family = EGRESS_FAMILY_UNIX;
#pragma unroll
	for (i = 0; i < (int)(sizeof(*k) / 4); i++)
		h = (h ^ w[i]) * 0x9e3779b97f4a7c15ULL;
	d->addr32[0] = (__u32)h;
	d->addr32[1] = (__u32)(h >> 32);
	d->addr32[2] = k->len;
	d->addr32[3] = 0;
}

/* The whole decision of a connect_unix or sendmsg_unix hook. */
static __always_inline int unix__decide(struct bpf_sock_addr *ctx, __u8 hook)
{
	struct egress_target_config *cfg;
	struct egress_target_config view;
	struct egress_decision dec = {
	    .verdict = EGRESS_VERDICT_DENY,
	    .reason = EGRESS_REASON_NO_MATCH,
	};
	struct egress_unix_key k = {};
	struct egress_rule_value *v;
	struct egress_dest d = {};
	struct bpf_sock *sk = ctx->sk;
	__u32 id;

	cfg = target__find(&id);
	if (!cfg || cfg->mode == EGRESS_MODE_OFF)
		return 1;
	if (!(cfg->flags & EGRESS_TF_UNIX_RULES) &&
	    cfg->mode != EGRESS_MODE_AUDIT)
		return 1;
	/* An address that cannot be read matches no rule: it is decided as
	 * an unlisted path (refused under an allow-list). */
	unix__read_addr(ctx, &k);
	k.ruleset = cfg->ruleset;
	v = bpf_map_lookup_elem(&unix_rules, &k);
	if (v) {
		dec.rule_id = v->rule_id;
		if (v->verdict == EGRESS_VERDICT_ALLOW) {
			dec.verdict = EGRESS_VERDICT_ALLOW;
			dec.reason = EGRESS_REASON_MATCH_ALLOW;
		} else {
			dec.reason = EGRESS_REASON_MATCH_DENY;
		}
	} else if (!(cfg->flags & EGRESS_TF_UNIX_ALLOWLIST)) {
		dec.verdict = EGRESS_VERDICT_ALLOW;
		dec.reason = EGRESS_REASON_UNIX_UNLISTED;
	}
	unix__dest(&d, &k);
	view = *cfg;
	if (cfg->mode == EGRESS_MODE_AUDIT &&
	    dec.reason == EGRESS_REASON_UNIX_UNLISTED)
		view.flags |= EGRESS_TF_EVENT_ALLOW;
	return verdict__apply_to(id, &view, &d, hook, &dec,
				 sk ? (__u8)sk->type : 0, 1, &k);
}

#endif /* EGRESS_BPF_LIB_UNIX_H_ */
