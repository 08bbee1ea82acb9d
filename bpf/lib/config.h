/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The one piece of per-instance configuration, and the target's config.
 *
 * What: egress_target_id, the program's only .rodata, and target__find(),
 * the target a call serves and its {ruleset, mode, flags} from the targets
 * map (for the user targets' root instance: by the caller's uid).
 * Why here: one object is loaded once per target; egressd sets this constant
 * between open and load (LoadAndPinPrograms), so each instance knows which
 * target it serves without looking at the caller's cgroup. Defining it in
 * exactly one header keeps the object's .rodata a single, known variable
 * (the skeleton's rodata->egress_target_id).
 *
 * Include order: abi.h, maps.h, then this; every other lib/ header that
 * needs the target id includes it.
 */
#ifndef EGRESS_BPF_LIB_CONFIG_H_
#define EGRESS_BPF_LIB_CONFIG_H_

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "egress/abi.h"
#include "maps.h"

/* Set by egressd between open and load: the target this instance enforces,
 * or EGRESS_TARGET_BY_UID for the one instance that serves every user
 * target from the cgroup2 root (it finds its target by uid). */
const volatile __u32 egress_target_id = 0;

/* The target of `uid` in user_targets: its config, with its id in *id; NULL
 * for a uid no user target names (let through at once). */
static __always_inline struct egress_target_config *target__of_uid(__u32 uid,
								   __u32 *id)
{
	__u32 *tid = bpf_map_lookup_elem(&user_targets, &uid);

	if (!tid)
		return NULL;
	*id = *tid;
	return bpf_map_lookup_elem(&targets, id);
}

/*
 * The target this call serves: its config (mode, flags, active ruleset),
 * with its id in *id. A cgroup target's instance knows its id (the verifier
 * sees the constant and drops the uid branch); the root instance looks the
 * calling task's real uid up, as the initial user namespace sees it (a
 * user namespace does not change it; a setuid binary keeps the caller's
 * real uid). NULL: nothing to enforce (a uid of no user target, or an id
 * out of range, which egressd never hands out).
 */
static __always_inline struct egress_target_config *target__find(__u32 *id)
{
	if (egress_target_id == EGRESS_TARGET_BY_UID)
		return target__of_uid((__u32)bpf_get_current_uid_gid(), id);
	*id = egress_target_id;
	return bpf_map_lookup_elem(&targets, id);
}

#endif /* EGRESS_BPF_LIB_CONFIG_H_ */
