// The control protocol between egressctl and egressd as types: one struct per
// request and per response, and the one place that turns them into JSON and
// back (protocol.cc). On the wire each message is one JSON object per line
// (control_socket.h): a request carries "cmd"; a response carries "ok" and,
// on failure, "code" and "error".
//
// Decoding never throws: a member of the wrong type or an unknown word is an
// InvalidArgument naming the member, so a malformed request is answered, not
// fatal.
#ifndef EGRESS_USERSPACE_CONTROL_PROTOCOL_H_
#define EGRESS_USERSPACE_CONTROL_PROTOCOL_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "nlohmann/json.hpp"
#include "userspace/policy/policy_file.h"
#include "userspace/policy/rule.h"
#include "userspace/policy/vocabulary.h"

namespace egress::control {

// ---- Shared parts ----

// A target as the operator describes it: by `target add`, by `run` and by a
// policy file (`apply`). The same fields in every request.
struct TargetSpec {
  std::string name;
  policy::TargetSource source = policy::TargetSource::kCgroup;
  std::string source_value;  // the path, unit, pid or glob as given
  policy::Mode mode = policy::Mode::kEnforce;
  policy::LoggingLevel logging = policy::LoggingLevel::kDenied;
  bool ephemeral = false;  // `egressctl run`: removed with its command
  std::vector<policy::Rule> rules;
  std::string file;  // the policy file it came from ("" = none)
  // "LINE:COL" of the target's value in `file` ("" = unknown): errors about
  // the target (a user that does not exist, a cgroup that is another
  // target's) point there, as the file's own errors do.
  std::string target_at;
  // The policy file's metadata.annotations, kept for `export`.
  std::map<std::string, std::string> annotations;
};
// The target spec of a parsed policy file.
TargetSpec SpecOfPolicy(const policy::Policy& policy);

// ---- Requests ----

struct TargetAddRequest {
  TargetSpec spec;
  bool cut = false;  // destroy existing connections the rules do not allow
};
struct TargetRemoveRequest {
  std::string name;
};
struct TargetListRequest {};
struct ModeRequest {
  policy::Mode mode = policy::Mode::kEnforce;
  std::string target;  // "" = the only target
  bool all = false;
  bool cut = false;  // enforce: destroy connections the rules refuse
};
struct LoggingRequest {
  policy::LoggingLevel level = policy::LoggingLevel::kDenied;
  std::string target;
};
struct RuleAddRequest {
  std::string target;
  policy::Rule rule;
  std::optional<int64_t> for_seconds;  // a temporary rule
  bool cut = false;
  bool dry_run = false;  // say what would change, change nothing
};
struct RuleDeleteRequest {
  std::string target;
  std::optional<uint32_t> number;    // from `list`, 1-based
  std::optional<policy::Rule> rule;  // or the rule itself
  bool cut = false;
  bool dry_run = false;  // say what would change, change nothing
};
struct ListRequest {
  std::string target;  // "" = every target
};
struct StatusRequest {};
struct ApplyRequest {
  bool dry_run = false;
  std::vector<TargetSpec> policies;
  bool cut = false;
};
struct ReloadRequest {};
struct SuggestRequest {
  std::string target;
  std::optional<int64_t> since_seconds;
  int group_v4 = 32;
  int group_v6 = 128;
  bool group_names = false;  // *.PARENT for names sharing a parent
};
struct ExportRequest {
  std::string target;  // "" = every target
};
enum class EventFormat { kJson, kText };
struct EventsRequest {
  bool follow = false;
  std::string target;
  std::string verdict;           // "" = all; deny, audit, allow, unexplained
  std::optional<uint32_t> last;  // default: 100, or 0 when following
  EventFormat format = EventFormat::kJson;
  std::string container;  // "" = all; a container's name or id
  std::string pod;        // "" = all; "NS/NAME" one pod, "NS/" a namespace
};
// The established TCP connections and connected UDP sockets of a target's
// cgroups, each judged by its rules; `cut` destroys the ones not allowed.
struct ConnectionsRequest {
  std::string target;  // "" = every target
  bool cut = false;
};
struct PingRequest {};

using Request =
    std::variant<TargetAddRequest, TargetRemoveRequest, TargetListRequest,
                 ModeRequest, LoggingRequest, RuleAddRequest, RuleDeleteRequest,
                 ListRequest, StatusRequest, ApplyRequest, ReloadRequest,
                 SuggestRequest, ExportRequest, EventsRequest,
                 ConnectionsRequest, PingRequest>;

// The "cmd" word of a request ("target_add", "rule_add", ...).
std::string CommandOf(const Request& request);
nlohmann::json EncodeRequest(const Request& request);
// policy::JsonText(EncodeRequest(request)), the same bytes. An `apply` is
// written without the tree: one of 200 policies of 1,000 rules is 200,000
// rule objects built, deep-copied and printed otherwise.
std::string RequestText(const Request& request);
absl::StatusOr<Request> DecodeRequest(const nlohmann::json& message);
// DecodeRequest, the same decoder, over simdjson's DOM (json_view_simdjson.h)
// with the same results and errors: egressd reads requests that way
// (DecodeRequestLine, control_socket.h), without nlohmann::json's tree.
class SimdjsonView;
absl::StatusOr<Request> DecodeRequestDom(const SimdjsonView& message);

// ---- Responses ----

// Who runs in a workload target's cgroup, named as `docker ps` and records
// name them (docs/events.md): a container's name, 12-digit id and image.
struct ContainerName {
  std::string name;
  std::string id;  // the short id
  std::string image;
};
// A pod's (every container of a pod shares its pod cgroup).
struct PodName {
  std::string ns;
  std::string name;
};
struct CgroupRef {
  std::string path;
  uint64_t id = 0;
  // A workload target's cgroup: its container, or its pod (`status`; absent
  // when the runtime does not list it now).
  std::optional<ContainerName> container;
  std::optional<PodName> pod;
};
struct TargetCounters {
  uint64_t allowed = 0, denied = 0, audited = 0, udp_replies = 0;
  uint64_t sockets_denied = 0, source_route_denied = 0;
  uint64_t events_lost = 0, events_suppressed = 0;
  uint64_t flows_opened = 0, flows_closed = 0, flows_unexplained = 0;
  // udp_peers (peer_evictions.h): peers its UDP sockets recorded, insertions
  // that failed, entries there now, and those the LRU evicted (derived at
  // egressd's last look, every few seconds at most).
  uint64_t udp_peers_recorded = 0, udp_peers_not_recorded = 0;
  uint64_t udp_peers_live = 0, udp_peers_evicted = 0;
  // Decisions the kernel's rule_hits map had no room to count per rule
  // (65,536 {target, rule} keys of live rules). 0 normally.
  uint64_t rule_hits_not_counted = 0;
};
// What a target learned from its own DNS answers (its name rules; the
// kernel's egress_dns_counters and egressd's sweep of dns_bindings).
struct TargetDns {
  uint64_t queries = 0;  // queries to port 53 remembered
  // Queries over the target's share of the pending-query table
  // (EGRESS_DNS_QUERIES_PER_WINDOW): sent, not remembered, so their answers
  // bind nothing.
  uint64_t queries_over_rate = 0;
  uint64_t answers = 0;           // messages from port 53 seen
  uint64_t answers_matched = 0;   // ... answering a remembered query
  uint64_t answers_empty = 0;     // ... matched, with an rcode or no address
  uint64_t bindings_learned = 0;  // (address, name rule) bound or renewed
  // Answers ignored, by why: the parse failed, no query of the socket asked
  // it (forged, late), the query went to a resolver no rule allows, no name
  // rule covers the question.
  uint64_t ignored_malformed = 0, ignored_no_query = 0;
  uint64_t ignored_resolver = 0, ignored_no_rule = 0;
  uint64_t refused_full = 0;  // bindings refused: map or address slots full
  // TCP segments from port 53 that start no message (a message's
  // continuation, data out of order): never parsed, not in `answers`.
  uint64_t ignored_stream = 0;
  // Packets the target sent from port 53 of an address it may query as its
  // resolver, refused (they would answer its own queries).
  uint64_t resolver_source_refused = 0;
  // dns_bindings entries of the target at egressd's last sweep (`status`
  // sweeps first): bound, expired (kept a little), and deleted since egressd
  // started.
  uint64_t bindings_live = 0, bindings_expired = 0, bindings_swept = 0;
  // Why the target's names cannot be learned ("" when nothing says so):
  // e.g. its processes resolve through nscd or systemd-resolved's socket.
  std::vector<std::string> resolver_warnings;
};
// A target and where it stands in the kernel.
struct TargetInfo;
// Where a target enforces, for people: its cgroup (pattern), or
// "user www-data (uid 33)" for a user target.
std::string TargetWhere(const TargetInfo& t);
struct TargetInfo {
  std::string name;
  uint32_t id = 0;
  std::string cgroup;  // "" for a user target
  uint32_t uid = 0;    // a user target's
  policy::Mode mode = policy::Mode::kEnforce;
  policy::LoggingLevel logging = policy::LoggingLevel::kDenied;
  uint64_t rules = 0;
  uint64_t name_rules = 0;  // rules that name a domain
  policy::TargetSource source = policy::TargetSource::kCgroup;
  std::string source_value;
  bool ephemeral = false;
  std::vector<CgroupRef> cgroups;  // pattern targets: every match
  bool cgroup_exists = false;
  uint64_t cgroup_id = 0;
  uint64_t hooks_attached = 0;
  uint64_t hooks_total = 0;
  bool attached = false;
  // Found pinned without state at start (rules unknown; remove lifts it).
  bool orphan = false;
  // Why the field self-check found the target not enforced ("" = healthy
  // or not checked yet).
  std::string degraded;
  // `status` only.
  std::optional<TargetCounters> counters;
  std::optional<TargetDns> dns;  // targets with name rules
  std::vector<std::string> warnings;
  // The file of egressd's --policy_dir that defines the target ("" = none):
  // its next reload replaces the target's rules, edits included.
  std::string policy_file;
};

// One connection that existed when it was looked at.
struct Connection {
  std::string target;
  std::string cgroup;  // path below the cgroup2 mount
  uint64_t cgroup_id = 0;
  std::string protocol;  // tcp, udp
  std::string family;    // IPv4, IPv6
  std::string state;     // established, syn_sent, close_wait
  std::string source;
  uint64_t source_port = 0;
  std::string destination;
  uint64_t destination_port = 0;
  uint64_t inode = 0;
  uint64_t cookie = 0;
  uint64_t uid = 0;
  uint64_t pid = 0;  // a process holding it (0 = not found)
  std::string comm;
  bool allowed = false;
  std::string reason;  // MATCHED_ALLOW, MATCHED_DENY, NO_MATCHING_RULE
  uint64_t rule = 0;   // the deciding rule's number in `list` (0 = none)
  std::string why;     // "allowed by rule 2: allow 443/tcp to 10.0.0.5"
  // kept, cut, audit (not allowed, left up: the target only audits), or
  // "cut failed: ..." with the error.
  std::string action = "kept";
};
struct TargetAddResponse {
  TargetInfo target;
  std::string warning;  // e.g. the cgroup does not exist yet
  // Connections that existed and the rules do not allow (also after
  // allow, deny, delete and apply).
  std::vector<Connection> existing;
};
struct TargetRemoveResponse {
  std::string removed;
};
struct TargetListResponse {
  std::vector<TargetInfo> targets;
};
struct ModeChange {
  std::string target;
  policy::Mode mode = policy::Mode::kEnforce;
};
struct ModeResponse {
  std::vector<ModeChange> changed;
  std::vector<Connection> existing;  // refused by the rules, after enforce
};
struct LoggingResponse {
  std::string target;
  policy::LoggingLevel logging = policy::LoggingLevel::kDenied;
};
struct RuleAddResponse {
  std::string target;
  uint64_t number = 0;    // the rule's place in `list`
  std::string rule;       // FormatRule text
  int64_t expires = 0;    // 0 = permanent
  bool extended = false;  // a temporary rule's end moved later
  bool skipped = false;   // the same rule exists already
  std::string message;
  std::vector<std::string> warnings;  // e.g. a deny shadows this allow
  std::vector<Connection> existing;
  std::string policy_file;  // TargetInfo::policy_file
  bool dry_run = false;     // nothing was changed
};
struct RuleDeleteResponse {
  std::string target;
  std::string deleted;
  std::vector<Connection> existing;
  std::string policy_file;  // TargetInfo::policy_file
  bool dry_run = false;     // nothing was changed
};
struct NumberedRule {
  uint64_t number = 0;
  policy::Rule rule;
};
struct TargetRules {
  std::string target;
  policy::Mode mode = policy::Mode::kEnforce;
  std::vector<NumberedRule> rules;
  bool orphan = false;  // rules unknown (TargetInfo::orphan)
};
struct ListResponse {
  std::vector<TargetRules> targets;
};
struct StatusResponse {
  std::vector<TargetInfo> targets;
  uint64_t metrics_port = 0;
  uint64_t events_read = 0;
  uint64_t events_dropped = 0;
  uint64_t events_sink_errors = 0;
  // udp_peers entries the LRU evicted, of every target since egressd
  // started (removed ones included).
  uint64_t udp_peers_evicted = 0;
  std::string bpffs;
  std::string cgroup_root;
  std::string version;
  std::string policy_dir;  // egressd --policy_dir ("" = none)
  // Why its last reload failed ("" = it succeeded): "FILE:LINE:COL: ..." for
  // a file egressd rejected. The policy enforced before stays in force.
  std::string policy_dir_error;
  // Why changes cannot be stored, so are refused ("" = they can): the state
  // directory has no room. What is pinned and stored is enforced meanwhile.
  std::string state_error;
};
// A rule kept (same id, same match) whose text changes: its comment, name
// or how its ports are written. `list` shows the new text from then on.
struct RuleTextChange {
  std::string from, to;  // FormatRule before and after
};
struct TargetChange {
  std::string target;
  std::string cgroup;
  std::string action;  // "create" or "update"
  std::string cgroup_from;
  // The mode and logging level: set for a new target, and for an update
  // when they change, with the old ones in the *_from members (an audit
  // target switched to enforce must not pass unseen in a dry run).
  std::optional<policy::Mode> mode;
  std::vector<std::string> added, removed, kept_temporary;
  std::string user;  // a user target: "user www-data (uid 33)"
  std::optional<policy::Mode> mode_from;
  std::optional<policy::LoggingLevel> logging, logging_from;
  std::vector<RuleTextChange> changed;
  // A container, selector or pod target (no one cgroup): what it selects,
  // "selector app=web", as `status` shows it.
  std::string workload;
};
struct ApplyResponse {
  bool dry_run = false;
  std::vector<TargetChange> changes;
  std::string note;
  std::vector<Connection> existing;
};
struct SuggestResponse {
  std::string target;
  uint64_t observations = 0;
  std::string yaml;
};
struct ExportFile {
  std::string name;
  std::string file;
  std::string yaml;
};
struct ExportResponse {
  std::vector<ExportFile> files;
};
struct EventsResponse {
  // Records rendered in the requested format, oldest first.
  std::vector<std::string> lines;
  // For people, not in the records (egressctl prints it on stderr): e.g.
  // no target has the name asked for now, but kept records carry it.
  std::string warning;
};
struct ConnectionsResponse {
  std::vector<Connection> connections;
  bool truncated = false;  // more sockets than one look reads
};
struct PingResponse {};

using Response =
    std::variant<TargetAddResponse, TargetRemoveResponse, TargetListResponse,
                 ModeResponse, LoggingResponse, RuleAddResponse,
                 RuleDeleteResponse, ListResponse, StatusResponse,
                 ApplyResponse, SuggestResponse, ExportResponse, EventsResponse,
                 ConnectionsResponse, PingResponse>;

// {"ok": true, ...the response's members}.
nlohmann::json EncodeResponse(const Response& response);
// policy::JsonText(EncodeResponse(response)), the same bytes; an apply's
// change lists (100,000 "+ ALLOW ..." lines for a large policy) are written
// straight into the text instead of through the tree.
std::string ResponseText(const Response& response);
// The response a request expects, decoded from a successful reply (the
// failure of a reply is ResponseStatus's business).
absl::StatusOr<Response> DecodeResponse(const Request& request,
                                        const nlohmann::json& message);
// DecodeResponse over simdjson's DOM, with the same results and errors:
// egressctl reads replies that way (DecodeReplyLine, control_socket.h).
absl::StatusOr<Response> DecodeResponseDom(const Request& request,
                                           const SimdjsonView& message);

// JSON of one target (also used inside other responses).
nlohmann::json EncodeTargetInfo(const TargetInfo& target);

}  // namespace egress::control

#endif  // EGRESS_USERSPACE_CONTROL_PROTOCOL_H_
