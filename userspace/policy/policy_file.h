// Policy files: one YAML document per file, one target per policy, egress
// rules shaped like Kubernetes NetworkPolicy egress rules. The full reference
// is docs/policy.md; examples are in policies/. In short:
//
//   apiVersion: egress.dev/v1alpha1
//   kind: EgressPolicy
//   metadata:
//     name: webapp                   # 1-64 of [A-Za-z0-9-_.@]
//     annotations: {description: "..."}   # optional, strings only
//   spec:
//     target:                        # exactly one of:
//       systemdUnit: webapp.service  #   a unit (no suffix = .service)
//       # cgroupPath: /system.slice/webapp.service
//       # cgroupPattern: /system.slice/docker-*.scope
//     mode: enforce                  # enforce (default) | audit
//     logging: denied                # off | denied (default) | all
//     egress:                        # allow rules
//     - name: dns                    # optional, unique in the policy
//       comment: "the resolver"      # optional
//       to:                          # omitted or [] = anywhere
//       - ipBlock: {cidr: 10.0.0.53/32}
//       ports:                       # omitted or [] = every port + icmp
//       - port: domain               # a number or a service name
//     egressDeny:                    # deny rules; any matching deny wins
//     - to: [{ipBlock: {cidr: 169.254.169.254/32}}]
//
// A rule matches when one of its `ports` entries matches the protocol and
// port AND one of its `to` entries contains the destination; this is both
// NetworkPolicy's meaning and that of rule.h, so each YAML rule becomes
// exactly one Rule. Semantics across rules are rule.h's: a matching deny beats
// every allow, nothing matching is denied.
//
// Ports entries: {port, endPort, protocol}.
//   port      1-65535, or a service name expanded by LookupService (services.h:
//             "https" = 443/tcp + 443/udp, "smtp" = 25/tcp). Omitted = every
//             port of the protocol.
//   endPort   inclusive end of a range; needs a numeric port, >= port.
//   protocol  TCP, UDP, ANY (= TCP and UDP) or ICMP, any letter case.
//             Omitted = TCP and UDP (UFW's choice; NetworkPolicy would
//             default to TCP). With a service name, omitted or ANY = the
//             service's own protocols; TCP/UDP keep only that protocol.
//             ICMP (ICMP for IPv4, ICMPv6 for IPv6) takes no port.
// Rule-level `icmp: true` is the same as a `{protocol: ICMP}` entry.
// `raw: true` (may create raw inet sockets) stands alone: no to, ports or
// icmp. So does `unix: [ADDRESS...]`, a unix-socket rule: in `egress` an
// allow-list entry, in `egressDeny` a refused address; each ADDRESS is an
// absolute path or @name (unix_rules.h, which also has the semantics).
//
// ipBlock: {cidr, except}. `except` networks must lie strictly inside `cidr`
// and of the same family. They are subtracted from `cidr`: the rule's
// destinations become the smallest set of networks covering cidr minus the
// excepts (at most prefix-length-difference networks per except). This is
// exactly NetworkPolicy's meaning: the excepted addresses are only missing
// from THIS ipBlock; another ipBlock or rule may still allow them. (Compiling
// `except` as a deny rule instead would also cut them out of every other
// allow rule with the same ports, which NetworkPolicy does not do.)
//
// Errors are InvalidArgument "FILE:LINE:COLUMN: FIELD.PATH: reason", 1-based,
// pointing at the offending key or value, e.g.
//   web.yaml:14:15: spec.egress[1].ports[0].port: unknown service "smpt" (did
//   you mean "smtp"?)
// Rejected: YAML syntax errors, an empty file, more than one document, a
// non-mapping where a mapping belongs (and so on for lists and scalars),
// unknown or duplicated fields anywhere (with a "did you mean" when a known
// field is close, and a specific reason for NetworkPolicy/Cilium fields that
// have no meaning here: podSelector, namespaceSelector, toFQDNs, toCIDR,
// toPorts, ...), missing apiVersion/kind/metadata.name/spec.target, a wrong
// apiVersion or kind, bad names, no target or two target kinds, bad cgroup
// paths/patterns/unit names, bad mode or logging, bad or host-bits-set CIDRs,
// bad excepts, port 0 or > 65535, endPort below port, endPort without a
// numeric port, unknown services, unknown protocols, ICMP with a port, raw
// or unix mixed with anything, an empty or bad unix address list,
// duplicate rule names. Nothing here throws.
#ifndef EGRESS_USERSPACE_POLICY_POLICY_FILE_H_
#define EGRESS_USERSPACE_POLICY_POLICY_FILE_H_

#include <cstddef>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "userspace/policy/rule.h"
#include "userspace/policy/vocabulary.h"

namespace egress::policy {

// The apiVersion and kind every policy file must carry.
inline constexpr absl::string_view kPolicyApiVersion = "egress.dev/v1alpha1";
inline constexpr absl::string_view kPolicyKind = "EgressPolicy";

// A 1-based position in a policy file; 0/0 when unknown.
struct SourceLocation {
  int line = 0;
  int column = 0;
  bool operator==(const SourceLocation&) const = default;
};

// What a policy applies to. `kind` is how the file names the target's cgroup:
//   TargetSource::kCgroup   `value` is a cgroup path relative to the cgroup2
//       mount, normalized to one leading "/", no trailing "/", no empty, "."
//       or ".." components, not the root, no wildcard but the literal
//       "[*]", "[?]" and "[[]" of target_values.h (kept as written; egressd
//       reads the cgroup's path with CgroupPathOfText):
//       "/system.slice/nginx.service". (A path written with the mount prefix,
//       "/sys/fs/cgroup/x", is kept as written; the daemon's
//       NormalizeCgroupPath strips it once the mount is known.)
//   TargetSource::kUnit     `value` is a systemd unit name with its suffix:
//       "nginx.service". A name without a suffix gets ".service" (as
//       systemctl does). Only units with a cgroup are accepted: .service,
//       .scope, .slice, .socket, .mount, .swap; not a template
//       ("foo@.service").
//   TargetSource::kPattern  `value` is a pattern over cgroup paths (same
//       normalization as kCgroup) with at least one wildcard; see
//       CgroupPatternMatches.
//   TargetSource::kUser     `value` (field `user`) is a uid or a user name
//       as CheckUser accepts it: every process of that user, whatever its
//       cgroup. egressd resolves a name when it applies the file.
// A policy file has no kPid targets: a process does not outlive its file
// (WritePolicy writes a pid target's cgroup as cgroupPath).
struct PolicyTarget {
  TargetSource kind = TargetSource::kCgroup;
  std::string value;

  bool operator==(const PolicyTarget&) const = default;
};

// "cgroupPath" / "systemdUnit" / "cgroupPattern" / "user": the YAML field
// names (kPid: "cgroupPath").
std::string TargetKindName(TargetSource kind);

// Where a Rule of a Policy came from.
struct RuleOrigin {
  std::string name;  // the rule's `name`, or "" if it has none
  // Item `index` of spec.egress (kAllow) or spec.egressDeny (kDeny): kept
  // as numbers, written out by Path() when a message needs it, as a file
  // has up to 100,000 rules and, as a rule, no error.
  Action list = Action::kAllow;
  size_t index = 0;
  SourceLocation location;  // of the rule's first field
  // "spec.egress[1]", "spec.egressDeny[0]".
  std::string Path() const;
  bool operator==(const RuleOrigin&) const = default;
};

struct Policy {
  std::string name;  // metadata.name
  std::string file;  // the file name given to ParsePolicy
  SourceLocation name_location;
  std::map<std::string, std::string> annotations;  // metadata.annotations
  PolicyTarget target;
  SourceLocation target_location;  // of the target kind's value
  Mode mode = Mode::kEnforce;
  LoggingLevel logging = LoggingLevel::kDenied;
  // spec.egress rules (Action::kAllow) in file order, then spec.egressDeny
  // (Action::kDeny) in file order. Every id is 0: the daemon assigns them.
  //   spec     the ports entries in the rule grammar's words, joined with
  //            ",": "dns", "443/tcp", "1000-2000/udp", "53" (tcp and udp),
  //            "tcp" (every tcp port), "any" (no ports: every port + icmp),
  //            "icmp", "raw", "unix", "dns,443/tcp,icmp". For display only.
  //   ports    tcp entries, then udp, then icmp/raw, in file order, without
  //            duplicates.
  //   destinations  every ipBlock after subtracting its excepts, in file
  //            order, without duplicates; empty = anywhere.
  //   host     always "".
  //   comment  "NAME: COMMENT", "NAME", "COMMENT" or "" from the rule's name
  //            and comment.
  //   name     the rule's name, or "" if it has none.
  std::vector<Rule> rules;
  // origins[i] describes rules[i].
  std::vector<RuleOrigin> origins;
};

// Parses one policy file's text. `file_name` is used in messages and kept in
// Policy::file. Errors: InvalidArgument as described at the top.
absl::StatusOr<Policy> ParsePolicy(absl::string_view yaml_text,
                                   const std::string& file_name);

// Reads and parses a file, or every "*.yaml" and "*.yml" regular file directly
// inside a directory (not subdirectories, not names starting with "."), in
// name order. File names in messages and Policy::file are `file_or_dir` or
// `file_or_dir`/NAME. Then CheckPolicySet. All or nothing: the first error is
// returned.
// Errors: parse errors as ParsePolicy; NotFound / PermissionDenied / ... for
// an unreadable path ("FILE: cannot read: No such file or directory");
// InvalidArgument for a file over 16 MiB, a path that is neither a regular
// file nor a directory, a directory with no policy files ("DIR: no *.yaml or
// *.yml files"), and CheckPolicySet's errors.
absl::StatusOr<std::vector<Policy>> LoadPolicies(
    const std::string& file_or_dir);

// Checks that no two policies share a name or a target (same kind, same
// value). InvalidArgument naming the later one's position and the earlier
// one's file, e.g.
//   b.yaml:4:9: metadata.name: policy "web" is also defined in a.yaml:4:9
//   b.yaml:7:18: spec.target.systemdUnit: "nginx.service" is already the
//   target of policy "web" (a.yaml:7:18)
// Overlap between a cgroupPattern and another target is not checked here (it
// depends on which cgroups exist).
absl::Status CheckPolicySet(absl::Span<const Policy> policies);

// True if `cgroup_path` (relative to the cgroup2 mount, leading "/") matches
// `pattern` (a TargetSource::kPattern value). Both are split at "/" and
// compared component by component with fnmatch(3) rules ("*", "?", "[a-z]",
// "[!a-z]"), so "*" never crosses a "/"; a component that is exactly "**"
// matches zero or more whole components. Backslash is an ordinary character
// (systemd escapes unit names with it: "\x2d"): a literal "*", "?" or "[" is
// the class "[*]", "[?]" or "[[]" (target_values.h).
//   /system.slice/docker-*.scope    matches /system.slice/docker-ab12.scope
//   /kubepods.slice/**/cri-containerd-*.scope  matches pods of every QoS class
bool CgroupPatternMatches(absl::string_view pattern,
                          absl::string_view cgroup_path);

}  // namespace egress::policy

#endif  // EGRESS_USERSPACE_POLICY_POLICY_FILE_H_
