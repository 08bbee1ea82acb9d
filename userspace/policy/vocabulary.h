// The words an operator uses for a target's settings, as types: enforcement
// mode, logging level and how a target was named. Parsed and printed in this
// one place; everything else passes the enums.
#ifndef EGRESS_USERSPACE_POLICY_VOCABULARY_H_
#define EGRESS_USERSPACE_POLICY_VOCABULARY_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "egress/abi.h"

namespace egress::policy {

// What a target's hooks do with a connection no rule allows.
enum class Mode : uint8_t {
  kEnforce = EGRESS_MODE_ENFORCE,  // refused with EPERM
  kAudit = EGRESS_MODE_AUDIT,      // let through, counted and recorded
};

// Which verdicts become records (counters always count).
enum class LoggingLevel : uint8_t {
  kOff,     // no verdict records
  kDenied,  // denied and audited attempts (the default)
  kAll,     // also every allowed attempt
};

// How the operator named a target's cgroup.
enum class TargetSource : uint8_t {
  kCgroup,   // a cgroup path
  kUnit,     // a systemd unit, resolved to its cgroup
  kPid,      // the cgroup of a process at the time it was added
  kPattern,  // every cgroup matching a glob, also those created later
  // Not a cgroup: every process whose real uid is the user's, wherever it
  // runs (the root program set finds it by uid).
  kUser,
  // Containers, found through the container runtime's API socket and
  // followed across restart and re-creation: one named (name, id or id
  // prefix), or every one whose labels match a selector ("k=v,k2=v2").
  kContainer,
  kSelector,
  // Pods, from the labels the kubelet's CRI writes on their containers
  // (containerd's k8s.io namespace): one pod ("shop/web-7d9"), or every pod
  // of a namespace whose labels match ("shop/app=web"; "shop/" = all of
  // them, as NetworkPolicy's empty podSelector). See pod_ref.h.
  kPod,
  kPodSelector,
};

// Targets that name workloads a container runtime reports (containers,
// pods), not cgroups: egressd finds their cgroups through the runtime.
inline bool IsWorkloadSource(TargetSource source) {
  return source == TargetSource::kContainer ||
         source == TargetSource::kSelector || source == TargetSource::kPod ||
         source == TargetSource::kPodSelector;
}

// "enforce" / "audit". InvalidArgument names the word and the choices.
absl::StatusOr<Mode> ParseMode(absl::string_view word);
std::string ModeName(Mode mode);
// The kernel's EGRESS_MODE_* value; Mode::kEnforce for anything else.
Mode ModeFromKernel(uint8_t value);
inline uint8_t KernelMode(Mode mode) { return static_cast<uint8_t>(mode); }

// "off" / "denied" / "all".
absl::StatusOr<LoggingLevel> ParseLoggingLevel(absl::string_view word);
std::string LoggingLevelName(LoggingLevel level);
// The record flags (EGRESS_TF_EVENT_*) of a level in a mode: `denied`
// records allowed decisions too in audit mode (learning needs them).
uint8_t LoggingFlags(LoggingLevel level, Mode mode);

// "cgroup" / "unit" / "pid" / "pattern" / "user" / "container" /
// "selector" / "pod" / "pod-selector".
absl::StatusOr<TargetSource> ParseTargetSource(absl::string_view word);
std::string TargetSourceName(TargetSource source);

}  // namespace egress::policy

#endif  // EGRESS_USERSPACE_POLICY_VOCABULARY_H_
