/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The one piece of per-instance configuration, and the target's config.
 *
 * What: egress_target_id and egress_watch_level, the program's .rodata, and
 * target__find(), the target a call serves and its {ruleset, mode, flags}
 * from the targets map (for the user targets' root instance: by the caller's
 * uid; for a watch instance: by the caller's child cgroup of the parent it
 * is attached to, target__of_cgroup).
 * Why here: egressd sets this constant between open and load
 * (LoadAndPinPrograms): a target's own instance (a pattern target, the user
 * targets' root set, --noshared_program_set) carries its target id, and the
 * one shared set carries EGRESS_TARGET_BY_STORAGE and reads the id egressd
 * wrote into the attach_target storage of the cgroup it runs for
 * (target__own_id). Neither looks at the caller's cgroup to find its policy
 * (a watch instance does: target__of_cgroup). Defining the constant in
 * exactly one header keeps the object's .rodata known variables (the
 * skeleton's rodata->egress_target_id, rodata->egress_watch_level,
 * rodata->egress_netns_cookies).
 *
 * Include order: abi.h, maps.h, then this; every other lib/ header that
 * needs the target id includes it.
 */
#ifndef EGRESS_BPF_LIB_CONFIG_H_
#define EGRESS_BPF_LIB_CONFIG_H_

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

#include "egress/abi.h"
#include "maps.h"

/* Set by egressd between open and load: the target this instance enforces,
 * EGRESS_TARGET_BY_UID for the one instance that serves every user target
 * from the cgroup2 root (it finds its target by uid), or
 * EGRESS_TARGET_BY_STORAGE for the one set shared by the literal-cgroup
 * targets (it finds its target in attach_target). */
const volatile __u32 egress_target_id = 0;
/* For a watch instance (EGRESS_TARGET_BY_CGROUP): the level of the parent
 * cgroup it is attached to (the cgroup2 root is 0). */
const volatile __u32 egress_watch_level = 0;
/* Set by egressd between open and load: 1 when this kernel lets cgroup_skb
 * programs call bpf_get_netns_cookie() (it names the namespace of the
 * packet's socket), so that a DNS binding is keyed by the namespace of the
 * socket its answer reached and allows connects from that namespace only
 * (dns_abi.h, egress_dns_binding_key). 0 keys every binding with 0 on both
 * sides (learning and connect); the verifier drops the helper calls, which
 * an older kernel would refuse. */
const volatile __u32 egress_netns_cookies = 0;

/* The kernel's task and cgroup structures, only the fields read here;
 * preserve_access_index has libbpf relocate their offsets against the
 * running kernel's BTF (CO-RE). */
struct kernfs_node {
	const char *name;
} __attribute__((preserve_access_index));
struct cgroup {
	int level;
	struct kernfs_node *kn;
	struct cgroup *ancestors[];
} __attribute__((preserve_access_index));
struct css_set {
	struct cgroup *dfl_cgrp;
} __attribute__((preserve_access_index));
struct task_struct {
	struct css_set *cgroups;
} __attribute__((preserve_access_index));

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

/* targets[*id] after a watch instance found *id; NULL for no target. */
static __always_inline struct egress_target_config *target__of_class(__u32 *id)
{
	if (*id == EGRESS_CGROUP_COVERED || *id == EGRESS_CGROUP_NOT_SELECTED)
		return NULL;
	return bpf_map_lookup_elem(&targets, id);
}

/*
 * The target of a watch instance's call, from the calling task's cgroup
 * (the socket's, for a socket it created): the child of the watched parent
 * the task lies in, looked up by cgroup id in cgroup_classes (egressd's
 * word once it has seen the cgroup), else by name in watch_names (so a
 * cgroup made again is a target's from its mkdir on), else the parent's
 * default (workload parents). NULL: not this instance's business (the
 * task is in the parent itself, or in a child no target names, or in one
 * its own target instance covers).
 */
static __always_inline struct egress_target_config *target__of_cgroup(__u32 *id)
{
	struct task_struct *task = (void *)bpf_get_current_task();
	struct egress_watch_parent *wp;
	struct egress_watch_key *key;
	struct cgroup *cg, *child;
	const char *name;
	__u32 *tid, zero = 0;
	__u64 child_id;

	cg = BPF_CORE_READ(task, cgroups, dfl_cgrp);
	if (!cg || BPF_CORE_READ(cg, level) <= (int)egress_watch_level)
		return NULL;
	child_id = bpf_get_current_ancestor_cgroup_id(egress_watch_level + 1);
	tid = bpf_map_lookup_elem(&cgroup_classes, &child_id);
	if (tid) {
		*id = *tid;
		return target__of_class(id);
	}
	key = bpf_map_lookup_elem(&watch_scratch, &zero);
	if (!key)
		return NULL;
	__builtin_memset(key, 0, sizeof(*key));
	key->parent_cgroup_id =
	    bpf_get_current_ancestor_cgroup_id(egress_watch_level);
	child = BPF_CORE_READ(cg, ancestors[egress_watch_level + 1]);
	name = BPF_CORE_READ(child, kn, name);
	if (bpf_probe_read_kernel_str(key->name, sizeof(key->name), name) < 0)
		return NULL;
	tid = bpf_map_lookup_elem(&watch_names, key);
	if (tid) {
		*id = *tid;
		return target__of_class(id);
	}
	wp = bpf_map_lookup_elem(&watch_parents, &key->parent_cgroup_id);
	if (!wp || wp->kind != EGRESS_WATCH_WORKLOAD)
		return NULL;
	*id = wp->default_target;
	return target__of_class(id);
}

/* What a call of the shared set decides by while egressd has not written
 * its attachment's target id (0): enforce with no rules, so everything
 * deciding denies. Read only; never a target's config. */
static const struct egress_target_config target__unwritten = {
    .ruleset = 0,
    .mode = EGRESS_MODE_ENFORCE,
};

/* The target id of the attachment this call runs for: the one a cgroup
 * target's instance was loaded with, or, for the shared set
 * (EGRESS_TARGET_BY_STORAGE), the id egressd wrote into the cgroup storage
 * of the cgroup the set is attached to (0 until written). */
static __always_inline __u32 target__own_id(void)
{
	__u32 *stored;

	if (egress_target_id != EGRESS_TARGET_BY_STORAGE)
		return egress_target_id;
	stored = bpf_get_local_storage(&attach_target, 0);
	return *stored;
}

/*
 * The target this call serves: its config (mode, flags, active ruleset),
 * with its id in *id. A cgroup target's instance knows its id (the verifier
 * sees the constant and drops the uid branch); the shared set reads it from
 * its attachment's cgroup storage, and an id not written yet (0) gets
 * target__unwritten, which denies: a storage made again must never open
 * anything. The root instance looks the calling task's real uid up, as the
 * initial user namespace sees it (a user namespace does not change it; a
 * setuid binary keeps the caller's real uid). NULL: nothing to enforce (a
 * uid of no user target, or an id out of range, which egressd never hands
 * out).
 */
static __always_inline struct egress_target_config *target__find(__u32 *id)
{
	if (egress_target_id == EGRESS_TARGET_BY_UID)
		return target__of_uid((__u32)bpf_get_current_uid_gid(), id);
	if (egress_target_id == EGRESS_TARGET_BY_CGROUP)
		return target__of_cgroup(id);
	*id = target__own_id();
	if (*id == 0)
		return (struct egress_target_config *)&target__unwritten;
	return bpf_map_lookup_elem(&targets, id);
}

#endif /* EGRESS_BPF_LIB_CONFIG_H_ */
