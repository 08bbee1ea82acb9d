#include "userspace/daemon/learner.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <map>
#include <optional>
#include <set>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "userspace/common/errno_status.h"
#include "userspace/common/status_macros.h"
#include "userspace/events/event_json.h"
#include "userspace/policy/rule_json.h"
#include "userspace/policy/suggest.h"
#include "userspace/policy/target_values.h"
#include "userspace/policy/unix_rules.h"
#include "userspace/policy/vocabulary.h"

namespace egress {

std::string Rfc3339(int64_t unix_seconds) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ",
                          absl::FromUnixSeconds(unix_seconds),
                          absl::UTCTimeZone());
}

policy::PolicyTarget PolicyTargetOf(const TargetState& t) {
  policy::PolicyTarget out;
  if (t.source == policy::TargetSource::kUnit) {
    out.kind = policy::TargetSource::kUnit;
    out.value = t.source_value;
  } else if (t.source == policy::TargetSource::kUser) {
    // As given: a name stays a name (the uid may differ on another host).
    out.kind = policy::TargetSource::kUser;
    out.value = t.source_value;
  } else if (policy::IsWorkloadSource(t.source)) {
    out.kind = t.source;
    out.value = t.source_value;
  } else if (t.source == policy::TargetSource::kPattern) {
    out.kind = policy::TargetSource::kPattern;
    out.value = t.cgroup;
  } else {
    // cgroup, and pid (a pid does not outlive its process; its cgroup does),
    // whose name may hold what a cgroupPath reads as a wildcard.
    out.kind = policy::TargetSource::kCgroup;
    out.value = policy::CgroupPathText(t.cgroup);
  }
  return out;
}

void Learner::Forget(const std::string& target) {
  std::lock_guard<std::mutex> lock(mu_);
  pending_.Forget(target);
  names_.Forget(target);
  unnameable_.erase(target);
  unnameable_shown_.erase(target);
  if (history_) history_->Forget(target).IgnoreError();
}

namespace {

// The port the kernel reads DNS queries and answers on (lib/dns_learn.h).
constexpr uint16_t kDnsPort = 53;

// The history's notes (LearnHistory::AddNote).
constexpr char kNoteOverflow[] = "overflow";
// Notes of unix addresses left out: "unnameable" (an older egressd's, why
// unknown), "unnameable:WHY" (counts by why) and "unnameable-address:WHY:
// ADDRESS" (the first few addresses of each why, as records show them).
constexpr char kNoteUnnameable[] = "unnameable";
constexpr char kNoteUnnameableWhy[] = "unnameable:";
constexpr char kNoteUnnameableAddress[] = "unnameable-address:";
// Addresses noted per target and why, and shown per why.
constexpr size_t kUnnameableShown = 3;

// Why a unix address cannot be named by a rule, in the order suggest lists
// them: the note's word and what suggest says.
struct UnnameableWhy {
  const char* word;
  const char* text;
};
constexpr UnnameableWhy kUnnameableWhys[] = {
    {"relative",
     "relative paths (resolved against the process's working directory; a "
     "rule names an absolute path or @name)"},
    {"non-ascii",
     "addresses with non-ASCII bytes (rules name printable ASCII only; shown "
     "as '?')"},
    {"control", "addresses with control or NUL bytes (shown as '?', '@')"},
    {"padded",
     "abstract names padded with NULs (shown as '@', where a rule's '@' is "
     "the byte '@')"},
    {"empty", "empty abstract names"},
    {"unknown", "addresses an older egressd left out without saying why"},
};

// The bytes free in the filesystem of `dir`, those reserved for root
// included (f_bfree, not f_bavail): egressd as root writes into them, and
// room made there would not show in f_bavail. nullopt when statvfs fails.
std::optional<uint64_t> FreeBytes(const std::string& dir) {
  struct statvfs fs;
  if (statvfs(dir.c_str(), &fs) != 0) return std::nullopt;
  return static_cast<uint64_t>(fs.f_bfree) * fs.f_frsize;
}

// Moves a corrupt file aside, loudly: learned traffic is not policy, so
// egressd keeps enforcing and starts learning afresh.
void MoveAside(const std::string& path, const absl::Status& why) {
  std::string aside =
      absl::StrCat(path, ".corrupt-", absl::ToUnixSeconds(absl::Now()));
  rename(path.c_str(), aside.c_str());
  fprintf(stderr,
          "egressd: %s; moved it to %s and started learning afresh (the "
          "enforced policy is not affected)\n",
          std::string(why.message()).c_str(), aside.c_str());
}

}  // namespace

absl::Status Learner::Load() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    EGRESS_RETURN_IF_ERROR(OpenHistoryLocked());
  }
  return ImportOlderJson();
}

absl::Status Learner::OpenHistoryLocked() {
  const std::string db = dir_ + "/learned.db";
  auto history = LearnHistory::Open(db, limits_);
  if (!history.ok() && absl::IsDataLoss(history.status())) {
    MoveAside(db, history.status());
    unlink((db + "-wal").c_str());
    unlink((db + "-shm").c_str());
    history = LearnHistory::Open(db, limits_);
  }
  if (!history.ok()) return history.status();
  history_ = *std::move(history);
  // The names the targets' addresses were resolved from before a restart.
  EGRESS_ASSIGN_OR_RETURN(auto kept,
                          history_->LoadNames(absl::GetCurrentTimeNanos()));
  for (const auto& [target, k] : kept) names_.Restore(target, k);
  return absl::OkStatus();
}

void Learner::SetJsonWaiting(absl::flat_hash_set<std::string> targets) {
  std::lock_guard<std::mutex> lock(mu_);
  json_waiting_ = std::move(targets);
}

absl::Status Learner::ImportOlderJson() {
  // One import at a time (Flush runs on the worker and for suggest): the
  // file is renamed only after its one transaction.
  std::lock_guard<std::mutex> importing(import_mu_);
  const std::string json = dir_ + "/learned.json";
  struct stat st;
  if (stat(json.c_str(), &st) != 0) {
    SetJsonWaiting({});
    return absl::OkStatus();
  }
  if (!S_ISREG(st.st_mode)) {
    // Not a file an older egressd wrote (a directory made by hand, a
    // device): nothing to import, and no reason to refuse the start.
    SetJsonWaiting({});
    fprintf(stderr,
            "egressd: %s is not a regular file: not imported into "
            "learned.db (move it away to silence this)\n",
            json.c_str());
    return absl::OkStatus();
  }
  // The file as learned.db keeps it once imported: an import whose rename
  // failed, or that egressd stopped before, is not added a second time. Its
  // size and modification time to the ns, not its device or inode: those
  // may differ after a reboot (devices numbered anew) or a copy (cp -a).
  const std::string identity =
      absl::StrCat("learned.json size ", st.st_size, " mtime ",
                   absl::ToUnixNanos(absl::TimeFromTimespec(st.st_mtim)));
  if (identity == json_waiting_identity_) {
    // Still no more room than when it failed: not read again.
    std::optional<uint64_t> free = FreeBytes(dir_);
    if (free && *free <= json_waiting_free_) return absl::OkStatus();
  }
  json_waiting_identity_.clear();
  EGRESS_ASSIGN_OR_RETURN(bool imported, history_->Imported(identity));
  if (!imported) {
    auto old = LearnStore::Load(json);
    if (!old.ok()) {
      SetJsonWaiting({});
      if (absl::IsDataLoss(old.status())) {
        MoveAside(json, old.status());
        return absl::OkStatus();
      }
      // Unreadable now (permissions, an I/O error): learned traffic is not
      // policy, so egressd starts; the file stays for the next start.
      fprintf(stderr,
              "egressd: %s; not imported into learned.db this time (the "
              "next start tries again)\n",
              std::string(old.status().message()).c_str());
      return absl::OkStatus();
    }
    LearnHistory::Seen seen;
    for (const std::string& target : old->Targets()) {
      seen.emplace_back(target, old->Query(target, 0));
    }
    if (absl::Status added =
            history_->AddAll(seen, absl::GetCurrentTimeNanos(), identity);
        !added.ok()) {
      if (!absl::IsResourceExhausted(added)) return added;
      // Learned traffic is not policy: egressd starts (read-only, as the
      // state store says) and imports the file whole once there is room.
      if (!json_waiting_logged_) {
        json_waiting_logged_ = true;
        fprintf(stderr,
                "egressd: %s not imported into learned.db: no room (%s); "
                "imported once there is room (until then suggest leaves out "
                "what it holds, and says so)\n",
                json.c_str(), std::string(added.message()).c_str());
      }
      if (std::optional<uint64_t> free = FreeBytes(dir_)) {
        json_waiting_identity_ = identity;
        json_waiting_free_ = *free;
      }
      absl::flat_hash_set<std::string> targets;
      for (const auto& [target, unused] : seen) targets.insert(target);
      SetJsonWaiting(std::move(targets));
      return absl::OkStatus();
    }
  }
  SetJsonWaiting({});
  if (json_waiting_logged_) {
    json_waiting_logged_ = false;
    fprintf(stderr, "egressd: %s imported into learned.db (room again)\n",
            json.c_str());
  }
  if (rename(json.c_str(), (json + ".migrated").c_str()) != 0) {
    // Imported all the same (learned.db says so): egressd starts, and the
    // next start renames it (said once per start: Flush tries no more).
    const absl::Status why =
        ErrnoStatus(errno, "rename learned.json after importing it", json);
    fprintf(stderr,
            "egressd: %s; it is imported and not imported again: move it "
            "away or free its name %s.migrated\n",
            std::string(why.message()).c_str(), json.c_str());
  }
  return absl::OkStatus();
}

absl::Status Learner::Flush() {
  LearnStore taken;
  absl::flat_hash_map<std::string, absl::flat_hash_map<std::string, uint64_t>>
      unnameable;
  absl::flat_hash_map<std::string, std::vector<AnswerNames::Kept>> names;
  if (history_ && JsonWaitsForAnyTarget()) {
    EGRESS_RETURN_IF_ERROR(ImportOlderJson());
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    names = names_.TakeChanged();
    if (!pending_.dirty() && unnameable_.empty() && names.empty()) {
      return absl::OkStatus();
    }
    std::swap(taken, pending_);
    std::swap(unnameable, unnameable_);
  }
  if (!history_) return absl::FailedPreconditionError("learned.db not open");
  const int64_t now = absl::GetCurrentTimeNanos();
  for (const std::string& target : taken.Targets()) {
    EGRESS_RETURN_IF_ERROR(history_->Add(target, taken.Query(target, 0), now));
    if (uint64_t lost = taken.overflow(target)) {
      EGRESS_RETURN_IF_ERROR(
          history_->AddNote(target, kNoteOverflow, lost, now));
    }
  }
  for (const auto& [target, notes] : unnameable) {
    for (const auto& [why, n] : notes) {
      EGRESS_RETURN_IF_ERROR(history_->AddNote(target, why, n, now));
    }
  }
  for (const auto& [target, changed] : names) {
    EGRESS_RETURN_IF_ERROR(history_->SaveNames(target, changed, now));
  }
  return absl::OkStatus();
}

namespace {

// Why a record is evidence of something the target initiated and that was
// (or in audit mode would have been) let through: a rule, the default, a
// unix address no deny names, a workload parent's default. Not a reply to a
// peer that sent first (inbound traffic never becomes an egress rule), nor
// a packet refused for how it was sent (a source route, a non-local source,
// one sent as the target's resolver): those name no destination to allow.
// A reason added later is left out until it is named here.
bool InitiatedReason(uint8_t reason) {
  switch (reason) {
    case EGRESS_REASON_NO_MATCH:
    case EGRESS_REASON_MATCH_ALLOW:
    case EGRESS_REASON_MATCH_DENY:
    case EGRESS_REASON_UNIX_UNLISTED:
    case EGRESS_REASON_UNCLASSIFIED:
      return true;
    default:
      return false;
  }
}

// A decision of the target's own connect or send (not a socket's creation
// or option).
bool DestinationHook(uint8_t hook) {
  return hook != EGRESS_HOOK_SOCK_CREATE && hook != EGRESS_HOOK_SETSOCKOPT;
}

// The address of a unix record as a rule names it, or nullopt when no rule
// can: bytes a rule cannot write (shown '?'), a NUL after an abstract
// name's first byte (a name padded to sizeof(sockaddr_un), shown '@', where
// a rule's '@' is the byte '@'), an empty abstract name.
std::optional<std::string> NameableUnixAddress(const egress_event& e) {
  const std::string text = UnixPathText(e);
  absl::StatusOr<std::string> bytes = policy::UnixAddressBytes(text);
  const uint32_t n = std::min<uint32_t>(e.path_len, EGRESS_UNIX_PATH_MAX);
  if (!bytes.ok() ||
      *bytes != std::string(reinterpret_cast<const char*>(e.path), n)) {
    return std::nullopt;
  }
  return text;
}

// Why a unix record's address (NameableUnixAddress refused it) cannot be
// named by a rule: a word of kUnnameableWhys.
std::string UnnameableWhyOf(const egress_event& e) {
  const uint32_t n = std::min<uint32_t>(e.path_len, EGRESS_UNIX_PATH_MAX);
  const std::string bytes(reinterpret_cast<const char*>(e.path), n);
  if (bytes.empty() || bytes == std::string(1, '\0')) return "empty";
  if (bytes[0] == '\0') {
    if (bytes.find('\0', 1) != std::string::npos) return "padded";
  } else if (bytes[0] != '/') {
    return "relative";
  }
  for (const char c : bytes.substr(1)) {
    if (static_cast<unsigned char>(c) >= 0x80) return "non-ascii";
  }
  return "control";
}

// The why of a unix address kept as text by an older egressd, which
// UnixAddressBytes refuses.
std::string UnnameableWhyOfText(const std::string& text) {
  if (text == "@") return "empty";
  if (text[0] != '/' && text[0] != '@') return "relative";
  return "unknown";
}

}  // namespace

void Learner::Learn(const egress_event& e, const std::string& target,
                    bool allows_recorded, int64_t realtime_offset_ns) {
  if (target.empty()) return;
  // A decision that let the target through, or would have in enforce mode.
  const bool let_through =
      e.kind == EGRESS_EVENT_VERDICT &&
      (e.verdict == EGRESS_VERDICT_AUDIT || e.verdict == EGRESS_VERDICT_ALLOW);
  // What the target initiated and was (or would have been) let through.
  bool verdict_record =
      let_through && DestinationHook(e.hook) && InitiatedReason(e.reason);
  // Decisions the rate limit held back, summed up after the fact. Their own
  // reasons are not kept, so only audit verdicts count (a held-back allow
  // may be replies to peers); the destination already has its first
  // records, this adds the attempts they stood for.
  bool held_back = e.kind == EGRESS_EVENT_HELD_BACK &&
                   e.verdict == EGRESS_VERDICT_AUDIT && DestinationHook(e.hook);
  // A raw inet socket the target created: it needs `raw: true`, without
  // which the suggested policy would make its socket() fail. (Other socket
  // kinds refused at creation, ping and UDP-Lite sockets, are no raw
  // sockets: `raw: true` would not allow them.)
  bool raw_socket = let_through && e.hook == EGRESS_HOOK_SOCK_CREATE &&
                    e.sock_type == SOCK_RAW;
  // A flow adds what no verdict record showed: connections a rule allowed
  // while allow records are off. (In audit mode the connect already left an
  // audit record, and its flow is "unexplained": counted once.)
  bool outbound_flow = e.kind == EGRESS_EVENT_FLOW_ESTABLISHED &&
                       e.direction == EGRESS_DIR_OUTBOUND &&
                       e.verdict == EGRESS_VERDICT_ALLOW && !allows_recorded;
  if (!verdict_record && !held_back && !outbound_flow && !raw_socket) return;
  // A held-back summary carries its count in `suppressed` alone.
  const uint64_t attempts =
      held_back ? uint64_t{e.suppressed} : uint64_t{e.suppressed} + 1;
  if (attempts == 0) return;
  std::lock_guard<std::mutex> lock(mu_);
  std::array<uint8_t, 16> addr;
  memcpy(addr.data(), e.addr, 16);
  // Printable ASCII only: the name ends up in suggest's policy comments,
  // which must stay UTF-8 text (any process can name itself any bytes).
  const std::string comm = CommText(e);
  if (raw_socket) {
    pending_.RecordRaw(target, e.family, e.proto, attempts,
                       RecordUnixNs(e, realtime_offset_ns), comm);
    return;
  }
  if (e.family == EGRESS_FAMILY_UNIX) {
    std::optional<std::string> path = NameableUnixAddress(e);
    if (!path) {
      const std::string why = UnnameableWhyOf(e);
      auto& notes = unnameable_[target];
      notes[absl::StrCat(kNoteUnnameableWhy, why)] += attempts;
      // The first few addresses of each why, as records show them
      // (printable ASCII), so that suggest can name them.
      std::string text = UnixPathText(e);
      if (why == "padded") {
        // The padding shown short: a name padded to sizeof(sun_path).
        const size_t end = text.find_last_not_of('@');
        if (end != std::string::npos && end + 2 < text.size()) {
          text = absl::StrCat(text.substr(0, end + 2), "...");
        }
      }
      const std::string prefix = absl::StrCat(kNoteUnnameableAddress, why, ":");
      const std::string address = prefix + text;
      auto& shown = unnameable_shown_[target];
      size_t of_why = 0;
      for (const std::string& a : shown) {
        if (absl::StartsWith(a, prefix)) ++of_why;
      }
      if (shown.contains(address) || of_why < kUnnameableShown) {
        shown.insert(address);
        notes[address] += attempts;
      }
      return;
    }
    pending_.RecordUnix(target, *path, attempts,
                        RecordUnixNs(e, realtime_offset_ns), comm);
    return;
  }
  const int64_t at_ns = RecordUnixNs(e, realtime_offset_ns);
  // Reached by a name only while an answer bound the address to it, as
  // enforcement decides: the same address reached later (a literal in a
  // configuration, an address the application kept) needs an address rule.
  // The resolver is never a name: its queries are what binds names, and a
  // name rule for it would be learned from its own answers.
  const bool dns = (e.proto == IPPROTO_UDP || e.proto == IPPROTO_TCP) &&
                   ntohs(e.port) == kDnsPort;
  pending_.Record(target, e.family, addr, e.proto, ntohs(e.port), attempts,
                  at_ns, comm,
                  dns ? "" : names_.NameOf(target, e.family, addr, at_ns));
}

void Learner::LearnAnswer(const egress_dns_answer_event& answer,
                          const std::string& target,
                          int64_t realtime_offset_ns) {
  if (target.empty()) return;
  // Stamped as records are (RecordUnixNs), so the two compare.
  egress_event stamp{};
  stamp.ts_ns = answer.ts_ns;
  const int64_t answer_ns = RecordUnixNs(stamp, realtime_offset_ns);
  std::lock_guard<std::mutex> lock(mu_);
  names_.Remember(target, answer, answer_ns, dns_ttl_floor_s_);
}

absl::StatusOr<control::SuggestResponse> Learner::Suggest(
    const TargetState& t, const control::SuggestRequest& req,
    const std::string& node_name) {
  EGRESS_RETURN_IF_ERROR(Flush());
  int64_t since_ns = 0;
  std::string since_text = "the start of learning";
  if (req.since_seconds) {
    if (*req.since_seconds < 0 || *req.since_seconds > int64_t{3650} * 86400) {
      return absl::InvalidArgumentError(
          "since_seconds must be a number of seconds up to 3650 days");
    }
    since_ns = absl::GetCurrentTimeNanos() - *req.since_seconds * 1'000'000'000;
    since_text = Rfc3339(since_ns / 1'000'000'000);
  }
  policy::SuggestOptions opts;
  opts.name = t.name;
  opts.target = PolicyTargetOf(t);
  opts.group_v4 = req.group_v4;
  opts.group_v6 = req.group_v6;
  opts.group_names = req.group_names;
  // Whether an older learned.json still waits, taken before the history is
  // read: an import that ends in between then costs a needless warning,
  // never a suggestion that lacks the file's traffic without saying so.
  const bool json_waiting = JsonWaiting(t.name);
  // Records that could not be told apart are not evidence of anything.
  EGRESS_ASSIGN_OR_RETURN(std::vector<policy::Observation> found,
                          history_->Query(t.name, since_ns));
  std::vector<policy::Observation> seen;
  // Unix addresses left out: attempts by why, and the addresses shown.
  std::map<std::string, uint64_t> unnameable;
  std::map<std::string, std::set<std::string>> unnameable_addresses;
  for (policy::Observation& o : found) {
    if (!o.unix_path.empty() || o.raw) {
      // Rows kept before such addresses were left out at learning.
      if (!o.unix_path.empty() && !policy::UnixAddressBytes(o.unix_path).ok()) {
        const std::string why = UnnameableWhyOfText(o.unix_path);
        unnameable[why] += o.count;
        unnameable_addresses[why].insert(o.unix_path);
        continue;
      }
      seen.push_back(std::move(o));
      continue;
    }
    bool ported = o.ip_proto == IPPROTO_TCP || o.ip_proto == IPPROTO_UDP;
    if (ported && o.port == 0) continue;
    if (!ported && o.ip_proto != IPPROTO_ICMP && o.ip_proto != IPPROTO_ICMPV6)
      continue;
    seen.push_back(std::move(o));
  }
  opts.header_comment.push_back(
      absl::StrCat("Learned by egressd on ", node_name, " from what target ",
                   t.name, " initiated since ", since_text, " (mode ",
                   policy::ModeName(t.mode), " when suggested)."));
  // What learning left out in the window read (kept in the history: a
  // restart does not hide it).
  EGRESS_ASSIGN_OR_RETURN(auto notes, history_->Notes(t.name, since_ns));
  const uint64_t lost = notes[kNoteOverflow];
  for (const auto& [key, n] : notes) {
    if (key == kNoteUnnameable) {
      unnameable["unknown"] += n;
    } else if (absl::StartsWith(key, kNoteUnnameableWhy)) {
      unnameable[key.substr(strlen(kNoteUnnameableWhy))] += n;
    } else if (absl::StartsWith(key, kNoteUnnameableAddress)) {
      std::pair<std::string, std::string> why_address = absl::StrSplit(
          key.substr(strlen(kNoteUnnameableAddress)), absl::MaxSplits(':', 1));
      unnameable_addresses[why_address.first].insert(why_address.second);
    }
  }
  uint64_t unnameable_total = 0;
  std::vector<std::string> whys;
  for (const UnnameableWhy& why : kUnnameableWhys) {
    auto it = unnameable.find(why.word);
    if (it == unnameable.end() || it->second == 0) continue;
    unnameable_total += it->second;
    std::string line = absl::StrCat(it->second, " to ", why.text);
    const std::set<std::string>& shown = unnameable_addresses[why.word];
    if (!shown.empty()) {
      std::vector<std::string> quoted;
      for (const std::string& a : shown) {
        if (quoted.size() == kUnnameableShown) break;
        quoted.push_back(absl::StrCat("'", a, "'"));
      }
      absl::StrAppend(&line, ", e.g. ", absl::StrJoin(quoted, ", "));
    }
    whys.push_back(std::move(line));
  }
  if (unnameable_total > 0) {
    opts.header_comment.push_back(absl::StrCat(
        "WARNING: ", unnameable_total,
        unnameable_total == 1 ? " attempt" : " attempts",
        " to unix addresses no rule can name, left out of this policy: ",
        absl::StrJoin(whys, "; "),
        ". `egressctl events` shows them; such a socket must be reached "
        "another way (an absolute path for a relative one), or the target "
        "left without unix rules."));
  }
  if (t.logging == policy::LoggingLevel::kOff) {
    opts.header_comment.push_back(
        "WARNING: the target's logging is off, so its decisions leave no "
        "record: nothing it did while logging was off is in this policy. "
        "Set `egressctl logging denied` and learn again.");
  }
  if (t.logging != policy::LoggingLevel::kOff &&
      (policy::LoggingFlags(t.logging, t.mode) & EGRESS_TF_EVENT_ALLOW) == 0) {
    // Enforcing at `denied`: an allowed connect or datagram leaves no
    // record; only TCP flows (sock_ops) still show what was let through.
    // A resolver, any UDP peer and unix sockets the rules allow would be
    // missing, and applying the suggestion would cut them off.
    opts.header_comment.push_back(
        "WARNING: the target enforces at logging `denied`, so what its rules "
        "allow leaves no record but TCP connections: allowed datagrams (DNS "
        "queries to its resolver, other UDP) and unix connects are missing "
        "from this policy, and applying it as is would refuse them. Keep the "
        "rules in force for them, or learn with `egressctl logging all` (or "
        "mode audit) and suggest again.");
  }
  if (json_waiting) {
    opts.header_comment.push_back(absl::StrCat(
        "WARNING: what an older egressd learned for this target is not in "
        "this policy: ",
        dir_,
        "/learned.json waits to be imported into learned.db, which has no "
        "room. Free space in --state_dir (egressd imports it then) and "
        "suggest again."));
  }
  if (lost > 0) {
    opts.header_comment.push_back(
        absl::StrCat("WARNING: ", lost, lost == 1 ? " attempt" : " attempts",
                     " to further destinations, not kept (table full); "
                     "review before enforcing."));
  }
  EGRESS_ASSIGN_OR_RETURN(std::string yaml, policy::SuggestPolicy(seen, opts));
  return control::SuggestResponse{t.name, seen.size(), yaml};
}

}  // namespace egress
