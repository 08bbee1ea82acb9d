/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The one piece of per-instance configuration, and the target's config.
 *
 * What: egress_target_id, the program's only .rodata, and target__config(),
 * the target's {ruleset, mode, flags} from the targets map.
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

/* Set by egressd between open and load: the target this instance enforces. */
const volatile __u32 egress_target_id = 0;

/* targets[egress_target_id]: mode, flags and active ruleset. NULL only if
 * the id were out of range (never: egressd hands out ids below the size). */
static __always_inline struct egress_target_config *target__config(void)
{
	__u32 id = egress_target_id;

	return bpf_map_lookup_elem(&targets, &id);
}

#endif /* EGRESS_BPF_LIB_CONFIG_H_ */
