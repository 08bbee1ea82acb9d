#include "userspace/daemon/daemon.h"

#include <bpf/libbpf_version.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/inotify.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <set>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "userspace/common/errno_status.h"
#include "userspace/common/mountinfo.h"
#include "userspace/common/status_macros.h"
#include "userspace/control/control_socket.h"
#include "userspace/daemon/cgroup_match.h"
#include "userspace/daemon/event_json.h"
#include "userspace/daemon/raw_capability.h"
#include "userspace/kernel/bpffs.h"
#include "userspace/kernel/cgroup.h"
#include "userspace/kernel/target_programs.h"
#include "userspace/policy/compile.h"
#include "userspace/policy/names.h"
#include "userspace/policy/policy_file.h"
#include "userspace/policy/policy_request.h"
#include "userspace/policy/rule_compare.h"
#include "userspace/policy/rule_json.h"

namespace egress {
namespace {

using nlohmann::json;

sigset_t HandledSignals() {
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGINT);
  sigaddset(&mask, SIGHUP);
  return mask;
}

absl::StatusOr<std::string> GetString(const json& req, const char* field) {
  if (!req.contains(field) || !req[field].is_string()) {
    return absl::InvalidArgumentError(
        absl::StrCat("request field '", field, "' missing or not a string"));
  }
  return req[field].get<std::string>();
}

bool IsPattern(const TargetState& t) { return t.source_kind == "pattern"; }

}  // namespace

std::vector<std::string> Daemon::TargetCgroups(const TargetState& t) {
  if (!IsPattern(t)) return {t.cgroup};
  CgroupMatches m = FindCgroups(cgroup_root_, t.cgroup);
  if (m.truncated) {
    fprintf(stderr,
            "egressd: target %s: pattern %s: stopped after 20000 "
            "directories; narrow the pattern\n",
            t.name.c_str(), t.cgroup.c_str());
  }
  // The same walk tells where new matches can appear: Run() watches these.
  pattern_watch_dirs_[t.id] = std::move(m.watch_dirs);
  return m.cgroups;
}

std::string Daemon::LinkDir(const TargetState& t, uint64_t cgroup_id) const {
  return absl::StrCat(TargetDir(t.id), "/cgroup-", cgroup_id);
}

absl::StatusOr<std::unique_ptr<Daemon>> Daemon::Create(DaemonOptions options) {
  // Signals wait for Run()'s signalfd: a SIGHUP or SIGTERM during start-up
  // is handled once the state is consistent, never by dying half-way.
  sigset_t mask = HandledSignals();
  sigprocmask(SIG_BLOCK, &mask, nullptr);
  auto d = std::unique_ptr<Daemon>(new Daemon(std::move(options)));
  // Listening first: a second egressd on the same socket stops here, before
  // it touches the state, the maps or the policy directory. Requests wait
  // in the backlog until Run() serves them.
  EGRESS_ASSIGN_OR_RETURN(ControlListener listener,
                          ControlListener::Listen(d->options_.socket_path));
  d->listener_ = std::make_unique<ControlListener>(std::move(listener));
  EGRESS_RETURN_IF_ERROR(d->Init());
  return d;
}

std::string Daemon::StatePath() const {
  return absl::StrCat(options_.state_dir, "/state.json");
}
std::string Daemon::MapsDir() const {
  return absl::StrCat(options_.bpffs_dir, "/v", EGRESS_ABI_VERSION, "/maps");
}
std::string Daemon::TargetDir(uint32_t id) const {
  return absl::StrCat(options_.bpffs_dir, "/v", EGRESS_ABI_VERSION, "/targets/",
                      id);
}
std::string Daemon::CgroupAbs(const std::string& rel) const {
  return absl::StrCat(cgroup_root_, rel);
}

absl::Status Daemon::Init() {
  if (options_.cgroup_root.empty()) {
    EGRESS_ASSIGN_OR_RETURN(cgroup_root_, Cgroup2Root());
  } else {
    cgroup_root_ = options_.cgroup_root;
  }
  EGRESS_RETURN_IF_ERROR(MakeDirs(options_.state_dir, 0700));
  EGRESS_RETURN_IF_ERROR(
      EnsureBpffsDir(options_.bpffs_dir, options_.bpffs_mount));
  EGRESS_RETURN_IF_ERROR(MakeDirs(MapsDir(), 0700));
  EGRESS_ASSIGN_OR_RETURN(maps_, SharedMaps::OpenOrCreate(MapsDir()));
  EGRESS_ASSIGN_OR_RETURN(state_, LoadState(StatePath()));
  EGRESS_RETURN_IF_ERROR(LoadLearned());

  // Never reuse a ruleset id that still has entries in the maps.
  EGRESS_ASSIGN_OR_RETURN(uint32_t max_in_maps, maps_->MaxRulesetInMaps());
  state_.next_ruleset = std::max(state_.next_ruleset, max_in_maps + 1);

  // Bring the kernel in line with the state: programs pinned, links live on
  // the current cgroup, rules rewritten. A target whose links are still
  // pinned keeps enforcing throughout (adopted, not re-attached).
  std::set<uint32_t> keep;
  const int64_t now = absl::ToUnixSeconds(absl::Now());
  bool all_attached = true;
  for (auto& [name, t] : state_.targets) {
    std::string dir = TargetDir(t.id);
    if (!ProgramsPinned(dir)) {
      EGRESS_RETURN_IF_ERROR(LoadAndPinPrograms(t.id, MapsDir(), dir));
    }
    // Temporary rules that ran out while egressd was down end now.
    std::vector<policy::Rule> rules;
    for (const policy::Rule& r : t.rules) {
      if (r.expires == 0 || r.expires > now) rules.push_back(r);
    }
    EGRESS_RETURN_IF_ERROR(ApplyRules(t, std::move(rules)));
    auto attached = AttachTarget(t);
    if (!attached.ok()) {
      all_attached = false;
      fprintf(stderr, "egressd: target %s: %s\n", name.c_str(),
              attached.status().ToString().c_str());
    }
    keep.insert(t.ruleset);
  }
  // An older version's programs go only once ours enforce every target;
  // otherwise Reconcile retries.
  retire_older_abis_ = true;
  if (all_attached) RetireOlderAbis();
  // Entries of rulesets no target uses were left by an interrupted apply.
  EGRESS_ASSIGN_OR_RETURN(size_t swept, maps_->DeleteRulesetsExcept(keep));
  if (swept > 0) {
    fprintf(stderr, "egressd: removed %zu stale rule entries\n", swept);
  }
  EGRESS_ASSIGN_OR_RETURN(
      events_,
      EventReader::Create(maps_->events_fd(),
                          [this](const egress_event& e) { OnEvent(e); }));
  // Records carry monotonic time; events show wall-clock time.
  timespec real, mono;
  clock_gettime(CLOCK_REALTIME, &real);
  clock_gettime(CLOCK_MONOTONIC, &mono);
  realtime_offset_ns_ = (int64_t{real.tv_sec} - mono.tv_sec) * 1000000000 +
                        (real.tv_nsec - mono.tv_nsec);
  char host[256] = {};
  gethostname(host, sizeof(host) - 1);
  node_name_ = host;
  EGRESS_RETURN_IF_ERROR(Save());
  if (!options_.policy_dir.empty()) ReloadAndLog("start");
  if (!options_.metrics_addr.empty()) {
    EGRESS_ASSIGN_OR_RETURN(
        metrics_, MetricsServer::Start(
                      options_.metrics_addr,
                      [this] {
                        std::lock_guard<std::mutex> lock(mu_);
                        return Snapshot();
                      },
                      [this] {
                        // Healthy while the loop turns; it drains
                        // every 50 ms.
                        int64_t last = loop_heartbeat_ns_.load();
                        return last == 0 || absl::GetCurrentTimeNanos() - last <
                                                int64_t{5'000'000'000};
                      }));
  }
  return absl::OkStatus();
}

absl::Status Daemon::Save() { return SaveState(StatePath(), state_); }

void Daemon::RetireOlderAbis() {
  // Every target is attached under the current version by now: the older
  // program sets can go without a moment of no enforcement.
  retire_older_abis_ = false;
  for (int v = 1; v < EGRESS_ABI_VERSION; ++v) {
    std::string dir = absl::StrCat(options_.bpffs_dir, "/v", v);
    struct stat st;
    if (stat(dir.c_str(), &st) != 0) continue;
    for (const std::string& target : LinkDirsBelow(dir + "/targets")) {
      DetachAndRemove(target).IgnoreError();
    }
    if (absl::Status rm = RemoveTree(dir); !rm.ok()) {
      fprintf(stderr, "egressd: cannot remove pins of ABI v%d: %s\n", v,
              rm.ToString().c_str());
      continue;
    }
    fprintf(stderr,
            "egressd: removed the pins of ABI v%d (%s): replaced by v%d\n", v,
            dir.c_str(), EGRESS_ABI_VERSION);
  }
}

uint32_t Daemon::NextRuleset() {
  uint32_t r = state_.next_ruleset++;
  if (state_.next_ruleset == 0) state_.next_ruleset = 1;
  return r;
}

absl::StatusOr<uint32_t> Daemon::AllocateTargetId() const {
  std::set<uint32_t> used;
  for (const auto& [n, t] : state_.targets) used.insert(t.id);
  for (uint32_t id = 1; id < EGRESS_MAX_TARGETS; ++id) {
    if (!used.count(id)) return id;
  }
  return absl::ResourceExhaustedError(
      absl::StrCat("at most ", EGRESS_MAX_TARGETS - 1, " targets"));
}

// The record flags of a target's logging level.
static uint8_t LogFlags(const TargetState& t) {
  if (t.log == "off") return EGRESS_TF_EVENT_NONE;
  if (t.log == "all") return EGRESS_TF_EVENT_ALLOW;
  return 0;
}

absl::Status Daemon::WriteConfig(const TargetState& t, uint32_t ruleset,
                                 uint8_t flags) {
  egress_target_config cfg{};
  cfg.ruleset = ruleset;
  cfg.mode = t.mode;
  cfg.flags = flags | LogFlags(t);
  return maps_->SetTargetConfig(t.id, cfg);
}

absl::Status Daemon::ApplyRules(TargetState& t,
                                std::vector<policy::Rule> rules) {
  uint32_t old_ruleset = t.ruleset;
  std::vector<policy::Rule> old_rules = t.rules;
  uint32_t new_ruleset = NextRuleset();
  EGRESS_ASSIGN_OR_RETURN(policy::CompiledRuleset compiled,
                          policy::Compile(new_ruleset, rules));
  if (absl::Status st = maps_->WriteEntries(compiled); !st.ok()) {
    maps_->DeleteEntries(compiled).IgnoreError();
    return st;
  }
  t.rules = std::move(rules);
  t.ruleset = new_ruleset;
  if (absl::Status st = Save(); !st.ok()) {
    t.rules = old_rules;
    t.ruleset = old_ruleset;
    maps_->DeleteEntries(compiled).IgnoreError();
    return st;
  }
  // The switch: one 8-byte map update. Before it every hook sees the old
  // rule set, after it the new one; never a mix, never nothing.
  if (absl::Status st = WriteConfig(t, new_ruleset, compiled.flags); !st.ok()) {
    t.rules = old_rules;
    t.ruleset = old_ruleset;
    Save().IgnoreError();
    maps_->DeleteEntries(compiled).IgnoreError();
    return st;
  }
  if (old_ruleset != 0 && old_ruleset != new_ruleset) {
    auto old_compiled = policy::Compile(old_ruleset, old_rules);
    if (old_compiled.ok()) {
      absl::Status st = maps_->DeleteEntries(*old_compiled);
      if (!st.ok()) {
        fprintf(stderr, "egressd: leaving stale entries of ruleset %u: %s\n",
                old_ruleset, st.ToString().c_str());
      }
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<bool> Daemon::AttachTarget(const TargetState& t) {
  if (IsPattern(t)) return AttachPattern(t);
  std::string abs = CgroupAbs(t.cgroup);
  auto id = CgroupId(abs);
  if (!id.ok()) {
    if (absl::IsNotFound(id.status())) return false;  // waiting for it
    return id.status();
  }
  EGRESS_ASSIGN_OR_RETURN(UniqueFd fd, OpenCgroup(abs));
  EGRESS_RETURN_IF_ERROR(AttachPinned(TargetDir(t.id), fd.get(), *id));
  return true;
}

absl::StatusOr<bool> Daemon::AttachPattern(const TargetState& t) {
  std::set<std::string> live_dirs;
  bool any = false;
  absl::Status first_error;
  for (const std::string& rel : TargetCgroups(t)) {
    std::string abs = CgroupAbs(rel);
    auto id = CgroupId(abs);
    if (!id.ok()) continue;  // gone since the walk
    std::string dir = LinkDir(t, *id);
    live_dirs.insert(dir);
    bool live = true;
    for (const LinkState& l : LinkStates(dir)) {
      if (!l.pinned || l.cgroup_id != *id) live = false;
    }
    if (!live) {
      auto fd = OpenCgroup(abs);
      absl::Status st =
          fd.ok() ? AttachPinnedTo(TargetDir(t.id), dir, fd->get(), *id)
                  : fd.status();
      if (!st.ok()) {
        // A cgroup removed since the walk is not an error.
        if (!absl::IsNotFound(st) && first_error.ok()) first_error = st;
        continue;
      }
      fprintf(stderr, "egressd: target %s: attached to %s (cgroup id %lu)\n",
              t.name.c_str(), rel.c_str(), static_cast<unsigned long>(*id));
    }
    any = true;
  }
  // Only cgroups that are gone lose their links (every link defunct): a
  // walk that missed a live cgroup (truncated, out of fds) must never lift
  // its enforcement.
  for (const std::string& dir : LinkDirsBelow(TargetDir(t.id))) {
    if (live_dirs.count(dir)) continue;
    bool defunct = true;
    for (const LinkState& l : LinkStates(dir)) {
      if (l.pinned && l.cgroup_id != 0) defunct = false;
    }
    if (defunct) DetachAndRemoveLinks(dir).IgnoreError();
  }
  if (!first_error.ok()) return first_error;
  return any;
}

int Daemon::Reconcile() {
  int attached = 0;
  bool failed = false;
  for (const auto& [name, t] : state_.targets) {
    if (IsPattern(t)) {
      auto st = AttachPattern(t);
      if (!st.ok()) {
        failed = true;
        fprintf(stderr, "egressd: target %s: %s\n", name.c_str(),
                st.status().ToString().c_str());
      }
      continue;
    }
    auto id = CgroupId(CgroupAbs(t.cgroup));
    if (!id.ok()) continue;
    bool live = true;
    for (const LinkState& l : LinkStates(TargetDir(t.id))) {
      if (!l.pinned || l.cgroup_id != *id) live = false;
    }
    if (live) continue;
    auto st = AttachTarget(t);
    if (st.ok() && *st) {
      ++attached;
      fprintf(stderr, "egressd: target %s: attached to %s (cgroup id %lu)\n",
              name.c_str(), t.cgroup.c_str(), static_cast<unsigned long>(*id));
    } else if (!st.ok()) {
      failed = true;
      fprintf(stderr, "egressd: target %s: %s\n", name.c_str(),
              st.status().ToString().c_str());
    }
  }
  if (retire_older_abis_ && !failed) RetireOlderAbis();
  return attached;
}

absl::StatusOr<TargetState*> Daemon::FindTarget(const json& req) {
  std::string name = req.value("target", std::string());
  if (name.empty()) {
    if (state_.targets.size() == 1) return &state_.targets.begin()->second;
    if (state_.targets.empty()) {
      return absl::FailedPreconditionError(
          "no targets yet: add one with 'egressctl target add NAME --cgroup "
          "PATH'");
    }
    std::vector<std::string> names;
    for (const auto& [n, t] : state_.targets) names.push_back(n);
    return absl::InvalidArgumentError(
        absl::StrCat("several targets exist (", absl::StrJoin(names, ", "),
                     "): name one with --target NAME"));
  }
  auto it = state_.targets.find(name);
  if (it == state_.targets.end()) {
    return absl::NotFoundError(absl::StrCat("no target named '", name, "'"));
  }
  return &it->second;
}

absl::StatusOr<json> Daemon::TargetAdd(const json& req) {
  EGRESS_ASSIGN_OR_RETURN(std::string name, GetString(req, "name"));
  EGRESS_RETURN_IF_ERROR(policy::CheckName(name, "target name"));
  if (state_.targets.count(name)) {
    return absl::AlreadyExistsError(
        absl::StrCat("target '", name, "' exists already"));
  }
  TargetState t;
  t.name = name;
  t.source_kind = req.value("source_kind", std::string("cgroup"));
  t.source = req.value("source", std::string());
  std::string cgroup_in;
  if (t.source_kind == "cgroup") {
    cgroup_in = t.source;
  } else if (t.source_kind == "unit") {
    EGRESS_ASSIGN_OR_RETURN(cgroup_in, CgroupOfUnit(t.source));
  } else if (t.source_kind == "pattern") {
    if (t.source.find_first_of("*?[") == std::string::npos) {
      return absl::InvalidArgumentError(absl::StrCat(
          "cgroup pattern '", t.source,
          "' has no wildcard (*, ?, [...]); use --cgroup for one cgroup"));
    }
    cgroup_in = t.source;
  } else if (t.source_kind == "pid") {
    char* end = nullptr;
    long pid = strtol(t.source.c_str(), &end, 10);
    if (t.source.empty() || *end != '\0' || pid <= 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("bad pid '", t.source, "'"));
    }
    EGRESS_ASSIGN_OR_RETURN(cgroup_in, CgroupOfPid(static_cast<pid_t>(pid)));
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown target kind '", t.source_kind, "'"));
  }
  EGRESS_ASSIGN_OR_RETURN(t.cgroup,
                          NormalizeCgroupPath(cgroup_in, cgroup_root_));
  for (const auto& [n, other] : state_.targets) {
    if (other.cgroup == t.cgroup) {
      return absl::AlreadyExistsError(
          absl::StrCat("cgroup ", t.cgroup, " is already target '", n, "'"));
    }
  }
  EGRESS_ASSIGN_OR_RETURN(t.mode,
                          ParseMode(req.value("mode", std::string("enforce"))));
  t.ephemeral = req.value("ephemeral", false);
  std::vector<policy::Rule> rules;
  if (req.contains("rules")) {
    EGRESS_ASSIGN_OR_RETURN(rules, policy::RulesFromJson(req["rules"]));
    for (policy::Rule& r : rules) r.id = t.next_rule_id++;
  }
  // Validate the rules before touching the kernel.
  EGRESS_RETURN_IF_ERROR(policy::Compile(1, rules).status());
  EGRESS_ASSIGN_OR_RETURN(t.id, AllocateTargetId());

  std::string dir = TargetDir(t.id);
  RemoveTree(dir).IgnoreError();  // leftovers of a removed target
  auto undo = [&] {
    DetachAndRemove(dir).IgnoreError();
    maps_->SetTargetConfig(t.id, egress_target_config{}).IgnoreError();
  };
  // Config (mode, no rules = deny all) goes in before any program attaches.
  if (absl::Status st = WriteConfig(t, 0, 0); !st.ok()) return st;
  EGRESS_RETURN_IF_ERROR(maps_->ResetCounters(t.id));
  if (absl::Status st = LoadAndPinPrograms(t.id, MapsDir(), dir); !st.ok()) {
    undo();
    return st;
  }
  auto [it, inserted] = state_.targets.emplace(name, t);
  TargetState& stored = it->second;
  if (absl::Status st = ApplyRules(stored, std::move(rules)); !st.ok()) {
    state_.targets.erase(it);
    undo();
    return st;
  }
  auto attached = AttachTarget(stored);
  if (!attached.ok()) {
    auto old = policy::Compile(stored.ruleset, stored.rules);
    if (old.ok()) maps_->DeleteEntries(*old).IgnoreError();
    state_.targets.erase(name);
    undo();
    Save().IgnoreError();
    return attached.status();
  }
  json out = TargetJson(stored);
  if (!*attached) {
    out["warning"] =
        IsPattern(stored)
            ? absl::StrCat("no cgroup matches ", stored.cgroup,
                           " yet; each one is enforced as soon as it is "
                           "created")
            : absl::StrCat("cgroup ", stored.cgroup,
                           " does not exist yet; it is enforced as soon "
                           "as it is created");
  }
  return out;
}

absl::StatusOr<json> Daemon::TargetRemove(const json& req) {
  EGRESS_ASSIGN_OR_RETURN(std::string name, GetString(req, "name"));
  auto it = state_.targets.find(name);
  if (it == state_.targets.end()) {
    return absl::NotFoundError(absl::StrCat("no target named '", name, "'"));
  }
  TargetState t = it->second;
  EGRESS_RETURN_IF_ERROR(DetachAndRemove(TargetDir(t.id)));
  state_.targets.erase(it);
  EGRESS_RETURN_IF_ERROR(Save());
  learn_.Forget(name);
  maps_->SetTargetConfig(t.id, egress_target_config{}).IgnoreError();
  auto compiled = policy::Compile(t.ruleset, t.rules);
  if (compiled.ok() && t.ruleset != 0)
    maps_->DeleteEntries(*compiled).IgnoreError();
  maps_->DeletePeers(t.id).IgnoreError();
  return json{{"removed", name}};
}

json Daemon::TargetJson(const TargetState& t) {
  json j = {{"name", t.name},          {"id", t.id},
            {"cgroup", t.cgroup},      {"mode", ModeName(t.mode)},
            {"rules", t.rules.size()}, {"source_kind", t.source_kind},
            {"source", t.source},      {"ephemeral", t.ephemeral}};
  if (IsPattern(t)) {
    json cgroups = json::array();
    int live = 0;
    size_t total = 0;
    for (const std::string& rel : TargetCgroups(t)) {
      auto cg = CgroupId(CgroupAbs(rel));
      if (!cg.ok()) continue;
      cgroups.push_back({{"path", rel}, {"id", *cg}});
      for (const LinkState& l : LinkStates(LinkDir(t, *cg))) {
        ++total;
        if (l.pinned && l.cgroup_id == *cg) ++live;
      }
    }
    j["pattern"] = true;
    j["cgroups"] = cgroups;
    j["cgroup_exists"] = !cgroups.empty();
    j["cgroup_id"] = 0;
    j["hooks_attached"] = live;
    j["hooks_total"] = total;
    j["attached"] = !cgroups.empty() && live == static_cast<int>(total);
    return j;
  }
  auto cg = CgroupId(CgroupAbs(t.cgroup));
  j["cgroup_exists"] = cg.ok();
  j["cgroup_id"] = cg.ok() ? *cg : 0;
  int live = 0;
  auto links = LinkStates(TargetDir(t.id));
  for (const LinkState& l : links) {
    if (l.pinned && cg.ok() && l.cgroup_id == *cg) ++live;
  }
  j["hooks_attached"] = live;
  j["hooks_total"] = links.size();
  j["attached"] = cg.ok() && live == static_cast<int>(links.size());
  return j;
}

absl::StatusOr<json> Daemon::TargetList(const json&) {
  json list = json::array();
  for (const auto& [n, t] : state_.targets) list.push_back(TargetJson(t));
  return json{{"targets", list}};
}

absl::StatusOr<json> Daemon::SetMode(const json& req) {
  EGRESS_ASSIGN_OR_RETURN(std::string mode_name, GetString(req, "mode"));
  EGRESS_ASSIGN_OR_RETURN(uint8_t mode, ParseMode(mode_name));
  std::vector<TargetState*> targets;
  if (req.value("all", false)) {
    for (auto& [n, t] : state_.targets) targets.push_back(&t);
  } else {
    EGRESS_ASSIGN_OR_RETURN(TargetState * t, FindTarget(req));
    targets.push_back(t);
  }
  json changed = json::array();
  for (TargetState* t : targets) {
    uint8_t old = t->mode;
    t->mode = mode;
    if (absl::Status st = Save(); !st.ok()) {
      t->mode = old;
      return st;
    }
    EGRESS_ASSIGN_OR_RETURN(egress_target_config cfg,
                            maps_->TargetConfig(t->id));
    cfg.mode = mode;
    EGRESS_RETURN_IF_ERROR(maps_->SetTargetConfig(t->id, cfg));
    changed.push_back({{"target", t->name}, {"mode", mode_name}});
  }
  return json{{"changed", changed}};
}

absl::StatusOr<json> Daemon::SetLogging(const json& req) {
  EGRESS_ASSIGN_OR_RETURN(std::string level, GetString(req, "level"));
  if (level != "off" && level != "denied" && level != "all") {
    return absl::InvalidArgumentError(absl::StrCat(
        "unknown logging level '", level, "': use off, denied or all"));
  }
  EGRESS_ASSIGN_OR_RETURN(TargetState * t, FindTarget(req));
  std::string old = t->log;
  t->log = level;
  if (absl::Status st = Save(); !st.ok()) {
    t->log = old;
    return st;
  }
  EGRESS_ASSIGN_OR_RETURN(egress_target_config cfg, maps_->TargetConfig(t->id));
  cfg.flags = static_cast<uint8_t>(
      (cfg.flags & ~(EGRESS_TF_EVENT_ALLOW | EGRESS_TF_EVENT_NONE)) |
      LogFlags(*t));
  EGRESS_RETURN_IF_ERROR(maps_->SetTargetConfig(t->id, cfg));
  return json{{"target", t->name}, {"logging", level}};
}

absl::StatusOr<json> Daemon::RuleAdd(const json& req) {
  EGRESS_ASSIGN_OR_RETURN(TargetState * t, FindTarget(req));
  if (!req.contains("rule"))
    return absl::InvalidArgumentError("request has no rule");
  EGRESS_ASSIGN_OR_RETURN(policy::Rule rule, policy::RuleFromJson(req["rule"]));
  rule.expires = 0;
  if (req.contains("for_seconds")) {
    if (!req["for_seconds"].is_number_unsigned() ||
        req["for_seconds"].get<uint64_t>() == 0 ||
        req["for_seconds"].get<uint64_t>() > uint64_t{10} * 365 * 86400) {
      return absl::InvalidArgumentError(
          "for_seconds must be a number of seconds, 1 to 10 years");
    }
    rule.expires =
        absl::ToUnixSeconds(absl::Now()) + req["for_seconds"].get<int64_t>();
  }
  rule.id = 0;
  for (size_t i = 0; i < t->rules.size(); ++i) {
    if (policy::SameRule(t->rules[i], rule)) {
      policy::Rule& kept = t->rules[i];
      // The same rule again: a permanent one stays; a temporary one lives
      // until the later of both ends (forever if the new one is permanent).
      if (kept.expires != 0 &&
          (rule.expires == 0 || rule.expires > kept.expires)) {
        int64_t before = kept.expires;
        kept.expires = rule.expires;
        if (absl::Status st = Save(); !st.ok()) {
          kept.expires = before;
          return st;
        }
        return json{{"target", t->name},
                    {"number", i + 1},
                    {"rule", policy::FormatRule(kept)},
                    {"expires", kept.expires},
                    {"extended", true}};
      }
      return json{{"target", t->name},
                  {"number", i + 1},
                  {"skipped", true},
                  {"message", "skipping adding existing rule"}};
    }
  }
  rule.id = t->next_rule_id;
  std::vector<policy::Rule> rules = t->rules;
  rules.push_back(rule);
  uint32_t saved_next = t->next_rule_id++;
  if (absl::Status st = ApplyRules(*t, std::move(rules)); !st.ok()) {
    t->next_rule_id = saved_next;
    return st;
  }
  json out = {{"target", t->name},
              {"number", t->rules.size()},
              {"rule", policy::FormatRule(rule)}};
  if (rule.expires != 0) out["expires"] = rule.expires;
  return out;
}

int Daemon::ExpireRules(int64_t now_unix) {
  int removed = 0;
  for (auto& [name, t] : state_.targets) {
    std::vector<policy::Rule> keep;
    std::vector<policy::Rule> gone;
    for (const policy::Rule& r : t.rules) {
      (r.expires != 0 && r.expires <= now_unix ? gone : keep).push_back(r);
    }
    if (gone.empty()) continue;
    if (absl::Status st = ApplyRules(t, std::move(keep)); !st.ok()) {
      fprintf(stderr, "egressd: target %s: cannot remove expired rules: %s\n",
              name.c_str(), st.ToString().c_str());
      continue;
    }
    for (const policy::Rule& r : gone) {
      fprintf(stderr, "egressd: target %s: temporary rule expired: %s\n",
              name.c_str(), policy::FormatRule(r).c_str());
    }
    removed += gone.size();
  }
  return removed;
}

absl::StatusOr<json> Daemon::RuleDelete(const json& req) {
  EGRESS_ASSIGN_OR_RETURN(TargetState * t, FindTarget(req));
  size_t index = 0;
  if (req.contains("number")) {
    if (!req["number"].is_number_unsigned()) {
      return absl::InvalidArgumentError(
          "rule number must be a positive number");
    }
    size_t n = req["number"].get<size_t>();
    if (n == 0 || n > t->rules.size()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "no rule number ", n, " in target '", t->name, "' (it has ",
          t->rules.size(), " rules; see 'egressctl list')"));
    }
    index = n - 1;
  } else if (req.contains("rule")) {
    EGRESS_ASSIGN_OR_RETURN(policy::Rule rule,
                            policy::RuleFromJson(req["rule"]));
    bool found = false;
    rule.comment = "";
    rule.expires = 0;
    for (size_t i = 0; i < t->rules.size(); ++i) {
      if (policy::SameRule(t->rules[i], rule)) {
        index = i;
        found = true;
        break;
      }
    }
    if (!found) {
      return absl::NotFoundError(absl::StrCat("no such rule in target '",
                                              t->name,
                                              "': ", policy::FormatRule(rule)));
    }
  } else {
    return absl::InvalidArgumentError("delete needs a rule number or a rule");
  }
  std::vector<policy::Rule> rules = t->rules;
  policy::Rule removed = rules[index];
  rules.erase(rules.begin() + index);
  EGRESS_RETURN_IF_ERROR(ApplyRules(*t, std::move(rules)));
  return json{{"target", t->name}, {"deleted", policy::FormatRule(removed)}};
}

absl::StatusOr<std::vector<const TargetState*>> Daemon::SelectTargets(
    const json& req) {
  std::vector<const TargetState*> targets;
  if (req.value("target", std::string()).empty()) {
    for (const auto& [n, t] : state_.targets) targets.push_back(&t);
  } else {
    EGRESS_ASSIGN_OR_RETURN(TargetState * t, FindTarget(req));
    targets.push_back(t);
  }
  return targets;
}

absl::StatusOr<json> Daemon::ListRules(const json& req) {
  EGRESS_ASSIGN_OR_RETURN(std::vector<const TargetState*> targets,
                          SelectTargets(req));
  json out = json::array();
  for (const TargetState* t : targets) {
    json rules = json::array();
    for (size_t i = 0; i < t->rules.size(); ++i) {
      json r = policy::RuleToJson(t->rules[i]);
      r["number"] = i + 1;
      r["text"] = policy::FormatRule(t->rules[i]);
      rules.push_back(r);
    }
    out.push_back(
        {{"target", t->name}, {"mode", ModeName(t->mode)}, {"rules", rules}});
  }
  return json{{"targets", out}};
}

absl::StatusOr<json> Daemon::Status(const json&) {
  json targets = json::array();
  for (const auto& [n, t] : state_.targets) {
    json j = TargetJson(t);
    auto c = maps_->Counters(t.id);
    if (c.ok()) {
      j["counters"] = {{"allowed", c->allowed},
                       {"denied", c->denied},
                       {"audited", c->audited},
                       {"udp_replies", c->replies},
                       {"sockets_denied", c->sockets_denied},
                       {"source_route_denied", c->srcroute_denied},
                       {"events_lost", c->events_lost},
                       {"events_suppressed", c->events_suppressed},
                       {"flows_opened", c->flows_opened},
                       {"flows_closed", c->flows_closed},
                       {"flows_unexplained", c->flows_unexplained}};
    }
    json warnings = json::array();
    if (!j["cgroup_exists"].get<bool>()) {
      warnings.push_back(
          IsPattern(t)
              ? absl::StrCat("no cgroup matches ", t.cgroup,
                             " yet: each is enforced once created")
              : absl::StrCat("cgroup ", t.cgroup,
                             " does not exist: enforced once created"));
    } else if (!j["attached"].get<bool>()) {
      warnings.push_back("not all hooks are attached to the current cgroup");
    }
    std::vector<std::string> cgroups = TargetCgroups(t);
    if (cgroups.size() > 16) cgroups.resize(16);  // bounded work per status
    for (const std::string& rel : cgroups) {
      for (const std::string& w :
           RawCapabilityWarnings(CgroupAbs(rel), /*max_processes=*/4096)) {
        warnings.push_back(w);
      }
    }
    j["warnings"] = warnings;
    targets.push_back(j);
  }
  return json{{"targets", targets},
              {"metrics_port", metrics_ ? metrics_->port() : 0},
              {"events_dropped", events_dropped_},
              {"events_sink_errors",
               options_.event_sink_errors ? options_.event_sink_errors() : 0},
              {"bpffs", options_.bpffs_dir},
              {"cgroup_root", cgroup_root_},
              {"events_read", events_read_}};
}

// What makes two rules the same for a diff: policy::RuleIdentity.
static std::string RuleKey(const policy::Rule& r) {
  return policy::RuleIdentity(r);
}

absl::StatusOr<json> Daemon::Apply(const json& req) {
  if (!req.contains("policies") || !req["policies"].is_array()) {
    return absl::InvalidArgumentError("apply needs a list of policies");
  }
  const bool dry_run = req.value("dry_run", false);
  // Phase 1: validate everything; nothing changes if anything is wrong.
  struct Planned {
    std::string name, source_kind, source, cgroup, logging;
    uint8_t mode;
    std::vector<policy::Rule> rules;
  };
  std::vector<Planned> plans;
  for (const json& p : req["policies"]) {
    Planned plan;
    plan.name = p.value("name", std::string());
    if (!policy::ValidName(plan.name)) {
      return absl::InvalidArgumentError(
          absl::StrCat("policy name '", plan.name, "' cannot name a target"));
    }
    plan.source_kind = p.value("target_kind", std::string());
    plan.source = p.value("target", std::string());
    if (plan.source_kind == "cgroup") {
      EGRESS_ASSIGN_OR_RETURN(plan.cgroup,
                              NormalizeCgroupPath(plan.source, cgroup_root_));
    } else if (plan.source_kind == "unit") {
      EGRESS_ASSIGN_OR_RETURN(std::string cg, CgroupOfUnit(plan.source));
      EGRESS_ASSIGN_OR_RETURN(plan.cgroup,
                              NormalizeCgroupPath(cg, cgroup_root_));
    } else if (plan.source_kind == "pattern") {
      EGRESS_ASSIGN_OR_RETURN(plan.cgroup,
                              NormalizeCgroupPath(plan.source, cgroup_root_));
    } else {
      return absl::InvalidArgumentError(absl::StrCat("policy ", plan.name,
                                                     ": unknown target kind '",
                                                     plan.source_kind, "'"));
    }
    EGRESS_ASSIGN_OR_RETURN(plan.mode,
                            ParseMode(p.value("mode", std::string("enforce"))));
    plan.logging = p.value("logging", std::string("denied"));
    EGRESS_ASSIGN_OR_RETURN(plan.rules, policy::RulesFromJson(p["rules"]));
    std::vector<policy::Rule> numbered = plan.rules;
    for (size_t i = 0; i < numbered.size(); ++i) numbered[i].id = i + 1;
    EGRESS_RETURN_IF_ERROR(policy::Compile(1, numbered).status());
    for (const auto& [n, t] : state_.targets) {
      if (t.cgroup == plan.cgroup && n != plan.name) {
        return absl::AlreadyExistsError(
            absl::StrCat("policy ", plan.name, ": cgroup ", plan.cgroup,
                         " is already target '", n, "'"));
      }
    }
    // Everything that could stop phase 3 is checked here, so a request is
    // applied whole or not at all.
    auto existing = state_.targets.find(plan.name);
    if (existing != state_.targets.end() &&
        existing->second.cgroup != plan.cgroup) {
      return absl::FailedPreconditionError(absl::StrCat(
          "target ", plan.name, " exists for cgroup ", existing->second.cgroup,
          "; remove it before applying it to ", plan.cgroup));
    }
    for (const Planned& other : plans) {
      if (other.cgroup == plan.cgroup) {
        return absl::InvalidArgumentError(
            absl::StrCat("policies ", other.name, " and ", plan.name,
                         " both target cgroup ", plan.cgroup));
      }
    }
    plans.push_back(std::move(plan));
  }
  // Phase 2: the diff.
  json changes = json::array();
  std::vector<std::vector<std::string>> plan_keys;
  for (const Planned& plan : plans) {
    json c = {{"target", plan.name}, {"cgroup", plan.cgroup}};
    auto it = state_.targets.find(plan.name);
    absl::flat_hash_map<std::string, uint32_t> old_ids;
    if (it == state_.targets.end()) {
      c["action"] = "create";
    } else {
      c["action"] = "update";
      for (const policy::Rule& o : it->second.rules) {
        old_ids.emplace(RuleKey(o), o.id);
      }
      if (it->second.cgroup != plan.cgroup)
        c["cgroup_from"] = it->second.cgroup;
      if (it->second.mode != plan.mode) c["mode"] = ModeName(plan.mode);
    }
    std::vector<std::string> keys;
    absl::flat_hash_set<std::string> new_keys;
    json added = json::array(), removed = json::array();
    for (const policy::Rule& r : plan.rules) {
      keys.push_back(RuleKey(r));
      new_keys.insert(keys.back());
      if (!old_ids.contains(keys.back()))
        added.push_back(policy::FormatRule(r));
    }
    json kept = json::array();
    const int64_t now_s = absl::ToUnixSeconds(absl::Now());
    if (it != state_.targets.end()) {
      for (const policy::Rule& o : it->second.rules) {
        if (new_keys.contains(RuleKey(o))) continue;
        (o.expires > now_s ? kept : removed).push_back(policy::FormatRule(o));
      }
    }
    c["added"] = added;
    c["removed"] = removed;
    c["kept_temporary"] = kept;
    changes.push_back(c);
    plan_keys.push_back(std::move(keys));
  }
  if (dry_run) return json{{"dry_run", true}, {"changes", changes}};
  // Phase 3: apply, target by target; each rule set switches in one update.
  const int64_t now = absl::ToUnixSeconds(absl::Now());
  auto apply_one = [&](size_t p) -> absl::Status {
    const Planned& plan = plans[p];
    auto it = state_.targets.find(plan.name);
    if (it == state_.targets.end()) {
      json add = {
          {"name", plan.name},
          {"source_kind", plan.source_kind == "pattern" ? "pattern" : "cgroup"},
          {"source", plan.cgroup},
          {"mode", ModeName(plan.mode)},
          {"rules", policy::RulesToJson(plan.rules)}};
      EGRESS_RETURN_IF_ERROR(TargetAdd(add).status());
      it = state_.targets.find(plan.name);
      it->second.source_kind = plan.source_kind;
      it->second.source = plan.source;
    } else {
      TargetState& t = it->second;
      std::vector<policy::Rule> rules = plan.rules;
      // Unchanged rules keep their ids (and so their counters).
      absl::flat_hash_map<std::string, uint32_t> old_ids;
      for (const policy::Rule& o : t.rules) old_ids.emplace(RuleKey(o), o.id);
      absl::flat_hash_set<uint32_t> used;
      for (size_t i = 0; i < rules.size(); ++i) {
        auto found = old_ids.find(plan_keys[p][i]);
        // A rule listed twice keeps its id once.
        if (found != old_ids.end() && used.insert(found->second).second) {
          rules[i].id = found->second;
        } else {
          rules[i].id = t.next_rule_id++;
        }
      }
      // Temporary rules (--for) the file does not hold live on until their
      // end: a file cannot express them, and applying one must not cut an
      // operator's exception short.
      for (const policy::Rule& o : t.rules) {
        if (o.expires > now && !used.contains(o.id)) rules.push_back(o);
      }
      // The same rules in the same mode (a reload at start, a re-apply):
      // nothing to rewrite in the kernel.
      if (rules != t.rules || t.mode != plan.mode) {
        t.mode = plan.mode;
        EGRESS_RETURN_IF_ERROR(ApplyRules(t, std::move(rules)));
      }
    }
    TargetState& t = state_.targets.find(plan.name)->second;
    if (t.log != plan.logging) {
      EGRESS_RETURN_IF_ERROR(
          SetLogging({{"target", plan.name}, {"level", plan.logging}})
              .status());
    }
    return absl::OkStatus();
  };
  for (size_t p = 0; p < plans.size(); ++p) {
    if (absl::Status st = apply_one(p); !st.ok()) {
      // Only a kernel or disk failure gets here (phase 1 checked the rest).
      Save().IgnoreError();
      return absl::Status(
          st.code(), absl::StrCat("partially applied: ", p, " of ",
                                  plans.size(), " policies switched, then ",
                                  plans[p].name, " failed: ", st.message()));
    }
  }
  EGRESS_RETURN_IF_ERROR(Save());
  return json{{"dry_run", false}, {"changes", changes}};
}

absl::StatusOr<json> Daemon::Reload(const json&) {
  const std::string& dir = options_.policy_dir;
  if (dir.empty()) {
    return absl::FailedPreconditionError(
        "egressd runs without --policy_dir: nothing to reload");
  }
  struct stat st;
  if (stat(dir.c_str(), &st) != 0 && errno == ENOENT) {
    return json{
        {"dry_run", false},
        {"changes", json::array()},
        {"note", absl::StrCat("policy directory ", dir, " does not exist")}};
  }
  auto policies = policy::LoadPolicies(dir);
  if (!policies.ok()) {
    if (absl::StrContains(policies.status().message(), "no *.yaml")) {
      return json{{"dry_run", false},
                  {"changes", json::array()},
                  {"note", std::string(policies.status().message())}};
    }
    return policies.status();
  }
  return Apply(policy::ApplyRequest(*policies, /*dry_run=*/false));
}

void Daemon::ReloadAndLog(const char* why) {
  auto r = Reload(json::object());
  reload_failed_ = !r.ok();
  if (!r.ok()) {
    const std::string msg(r.status().message());
    fprintf(stderr, "egressd: %s: policy directory %s %s: %s\n", why,
            options_.policy_dir.c_str(),
            absl::StartsWith(msg, "partially applied")
                ? "FAILED PART-WAY"
                : "rejected, enforcement unchanged",
            msg.c_str());
    return;
  }
  if (r->contains("note")) {
    fprintf(stderr, "egressd: %s: %s\n", why,
            (*r)["note"].get<std::string>().c_str());
  }
  for (const json& c : (*r)["changes"]) {
    fprintf(stderr, "egressd: %s: %s target %s: %zu rules added, %zu removed\n",
            why, c["action"].get<std::string>().c_str(),
            c["target"].get<std::string>().c_str(), c["added"].size(),
            c["removed"].size());
  }
}

json Daemon::Handle(const json& request) {
  std::string cmd = request.value("cmd", std::string());
  absl::StatusOr<json> result;
  if (cmd == "target_add") {
    result = TargetAdd(request);
  } else if (cmd == "target_remove") {
    result = TargetRemove(request);
  } else if (cmd == "target_list") {
    result = TargetList(request);
  } else if (cmd == "mode") {
    result = SetMode(request);
  } else if (cmd == "rule_add") {
    result = RuleAdd(request);
  } else if (cmd == "rule_delete") {
    result = RuleDelete(request);
  } else if (cmd == "list") {
    result = ListRules(request);
  } else if (cmd == "status") {
    result = Status(request);
  } else if (cmd == "logging") {
    result = SetLogging(request);
  } else if (cmd == "apply") {
    result = Apply(request);
  } else if (cmd == "reload") {
    result = Reload(request);
  } else if (cmd == "suggest") {
    result = Suggest(request);
  } else if (cmd == "export") {
    result = Export(request);
  } else if (cmd == "events") {
    result = Events(request);
  } else if (cmd == "ping") {
    result = json{{"pong", true}};
  } else {
    result =
        absl::InvalidArgumentError(absl::StrCat("unknown command '", cmd, "'"));
  }
  if (!result.ok()) return ErrorResponse(result.status());
  json out = *std::move(result);
  out["ok"] = true;
  return out;
}

namespace {
constexpr size_t kRecentEvents = 4096;
constexpr size_t kSubscriberBuffer = 1 << 20;
// With kSubscriberBuffer each, subscribers cost egressd at most 64 MiB.
constexpr size_t kMaxSubscribers = 64;
}  // namespace

std::string Daemon::CgroupPath(uint64_t id, const TargetState* target) {
  if (id == 0 || target == nullptr) return "";
  if (auto it = cgroup_paths_.find(id); it != cgroup_paths_.end())
    return it->second;
  // Walk the target's subtree once and remember every id seen (bounded).
  if (cgroup_paths_.size() > 65536) cgroup_paths_.clear();
  std::vector<std::string> stack = TargetCgroups(*target);
  size_t visited = 0;
  while (!stack.empty() && visited < 10000) {
    std::string rel = stack.back();
    stack.pop_back();
    ++visited;
    std::string abs = CgroupAbs(rel);
    auto cid = CgroupId(abs);
    if (cid.ok()) cgroup_paths_[*cid] = rel;
    for (const std::string& name : SubdirNames(abs)) {
      stack.push_back(absl::StrCat(rel, "/", name));
    }
  }
  auto it = cgroup_paths_.find(id);
  return it == cgroup_paths_.end() ? "" : it->second;
}

uint32_t Daemon::RuleNumber(const TargetState& t, uint32_t rule_id) {
  // Rebuilt when the target's rule set changed: records cost O(1) however
  // many rules there are.
  RuleIndex& index = rule_numbers_[t.id];
  if (index.ruleset != t.ruleset || index.numbers.size() != t.rules.size()) {
    index.ruleset = t.ruleset;
    index.numbers.clear();
    for (size_t i = 0; i < t.rules.size(); ++i) {
      index.numbers.emplace(t.rules[i].id, i + 1);
    }
  }
  auto it = index.numbers.find(rule_id);
  return it == index.numbers.end() ? 0 : it->second;
}

void Daemon::OnEvent(const egress_event& e) {
  ++events_read_;
  const TargetState* target = nullptr;
  for (const auto& [n, t] : state_.targets) {
    if (t.id == e.target_id) target = &t;
  }
  EventContext ctx;
  ctx.realtime_offset_ns = realtime_offset_ns_;
  ctx.node_name = node_name_;
  if (target != nullptr) {
    ctx.target = target->name;
    if (e.rule_id != 0) ctx.rule_number = RuleNumber(*target, e.rule_id);
  }
  ctx.cgroup_path = CgroupPath(e.cgroup_id, target);
  Learn(e, ctx.target);
  RecentEvent r;
  r.target = ctx.target;
  r.verdict = VerdictName(e.verdict);
  // The fixed-schema writer covers nearly every record; the tree is the
  // fallback (flows, non-ASCII names).
  if (!line_writer_.Append(e, ctx, &r.line)) {
    r.line = EventToJson(e, ctx).dump(-1, ' ', false,
                                      json::error_handler_t::replace);
  }
  if (options_.event_sink) options_.event_sink(r.line);
  Publish(r);
  recent_.push_back(std::move(r));
  if (recent_.size() > kRecentEvents) recent_.pop_front();
}

bool Daemon::Matches(const Subscriber& s, const RecentEvent& event) const {
  if (!s.target.empty() && event.target != s.target) return false;
  if (!s.verdict.empty() && event.verdict != s.verdict) return false;
  return true;
}

void Daemon::Publish(const RecentEvent& event) {
  if (subscribers_.empty()) return;
  std::string line = event.line + "\n";
  for (Subscriber& s : subscribers_) {
    if (!s.fd.valid() || !Matches(s, event)) continue;
    if (s.pending.size() + line.size() > kSubscriberBuffer) {
      // A slow reader loses records; egressd's memory stays bounded.
      ++events_dropped_;
      continue;
    }
    s.pending += line;
  }
}

// Normalizes a verdict filter word to the record's spelling.
static std::string VerdictFilter(const std::string& word) {
  std::string w = absl::AsciiStrToLower(word);
  if (w == "deny" || w == "denied") return "DENIED";
  if (w == "allow" || w == "allowed") return "ALLOWED";
  if (w == "audit") return "AUDIT";
  if (w == "unexplained") return "UNEXPLAINED";
  return "";
}

absl::StatusOr<json> Daemon::Events(const json& req) {
  Subscriber filter;
  filter.target = req.value("target", std::string());
  if (!filter.target.empty() && !state_.targets.count(filter.target)) {
    return absl::NotFoundError(
        absl::StrCat("no target named '", filter.target, "'"));
  }
  std::string verdict = req.value("verdict", std::string());
  if (!verdict.empty()) {
    filter.verdict = VerdictFilter(verdict);
    if (filter.verdict.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown verdict '", verdict,
                       "': use deny, audit, allow or unexplained"));
    }
  }
  if (req.value("follow", false) && subscribers_.size() >= kMaxSubscribers) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "at most ", kMaxSubscribers, " 'events --follow' clients at once"));
  }
  // Like tail -f: a follower gets no backlog unless it asks (--last N).
  size_t last =
      req.value("last", req.value("follow", false) ? size_t{0} : size_t{100});
  json events = json::array();
  for (auto it = recent_.rbegin(); it != recent_.rend() && events.size() < last;
       ++it) {
    if (!Matches(filter, *it)) continue;
    json j = json::parse(it->line, nullptr, /*allow_exceptions=*/false);
    if (!j.is_discarded()) events.push_back(std::move(j));
  }
  std::reverse(events.begin(), events.end());
  return json{{"events", events}};
}

void Daemon::FlushSubscribers() {
  for (Subscriber& s : subscribers_) {
    if (!s.fd.valid()) continue;
    char probe;
    ssize_t peek = recv(s.fd.get(), &probe, 1, MSG_PEEK | MSG_DONTWAIT);
    if (peek == 0 || (peek < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
      s.fd.reset();  // the client went away
      continue;
    }
    while (!s.pending.empty()) {
      ssize_t n = send(s.fd.get(), s.pending.data(), s.pending.size(),
                       MSG_DONTWAIT | MSG_NOSIGNAL);
      if (n > 0) {
        s.pending.erase(0, n);
        continue;
      }
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
      s.fd.reset();
      break;
    }
  }
  subscribers_.erase(
      std::remove_if(subscribers_.begin(), subscribers_.end(),
                     [](const Subscriber& s) { return !s.fd.valid(); }),
      subscribers_.end());
}

MetricsSnapshot Daemon::Snapshot() {
  MetricsSnapshot m;
  static const char* kKinds[] = {"allowed", "denied", "audit", "udp_reply"};
  static const char* kProtos[] = {"tcp", "udp", "icmp", "other"};
  for (const auto& [name, t] : state_.targets) {
    MetricsSnapshot::Target mt;
    mt.name = name;
    mt.mode = ModeName(t.mode);
    mt.rules = t.rules.size();
    json tj = TargetJson(t);
    mt.hooks_attached = tj["hooks_attached"].get<uint64_t>();
    mt.hooks_total = tj["hooks_total"].get<uint64_t>();
    auto c = maps_->Counters(t.id);
    if (c.ok()) {
      mt.sockets_denied = c->sockets_denied;
      mt.source_routes_denied = c->srcroute_denied;
      mt.events_lost = c->events_lost;
      mt.events_suppressed = c->events_suppressed;
      mt.flows_active =
          c->flows_opened - std::min(c->flows_opened, c->flows_closed);
      for (int k = 0; k < EGRESS_CTR_KINDS; ++k) {
        for (int p = 0; p < EGRESS_CTR_PROTOS; ++p) {
          m.verdicts.push_back(
              {name, kKinds[k], kProtos[p], c->by_proto[k][p]});
        }
      }
    }
    auto hits = maps_->RuleHits(t.id);
    if (hits.ok()) {
      for (const auto& [rule_id, n] : *hits) {
        std::string text = rule_id == 0 ? "default deny" : "";
        if (uint32_t n = rule_id == 0 ? 0 : RuleNumber(t, rule_id); n > 0) {
          text = policy::FormatRule(t.rules[n - 1]);
        }
        m.rule_hits.push_back({name, rule_id, text, n});
      }
    }
    m.targets.push_back(mt);
  }
  m.events_read = events_read_;
  m.events_dropped = events_dropped_;
  m.events_sink_errors =
      options_.event_sink_errors ? options_.event_sink_errors() : 0;
  m.version = "0.1.0";
  m.libbpf_version =
      absl::StrCat(LIBBPF_MAJOR_VERSION, ".", LIBBPF_MINOR_VERSION);
  return m;
}

absl::Status Daemon::Run(const std::atomic<bool>* stop) {
  const ControlListener& listener = *listener_;
  sigset_t mask = HandledSignals();
  UniqueFd sigfd(signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK));
  if (!sigfd) return ErrnoStatus(errno, "signalfd");
  // cgroup directories created under a target's parent wake the loop at
  // once, so a re-created cgroup is enforced within one iteration.
  UniqueFd inotify(inotify_init1(IN_CLOEXEC | IN_NONBLOCK));
  // The policy directory: a change (an edit, a ConfigMap update, which
  // swaps a symlink) is applied like SIGHUP, 1 s after the last change.
  UniqueFd policy_watch;
  absl::Time policy_reload_at = absl::InfiniteFuture();
  if (!options_.policy_dir.empty()) {
    policy_watch.reset(inotify_init1(IN_CLOEXEC | IN_NONBLOCK));
    if (inotify_add_watch(policy_watch.get(), options_.policy_dir.c_str(),
                          IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM |
                              IN_CREATE | IN_DELETE) < 0) {
      fprintf(stderr,
              "egressd: not watching %s (%s): reload it with SIGHUP or "
              "egressctl reload\n",
              options_.policy_dir.c_str(), strerror(errno));
      policy_watch.reset();
    }
  }
  std::set<std::string> watched;
  auto watch = [&](const std::string& abs) {
    if (watched.count(abs)) return;
    if (watched.size() >= 8192) {
      // Directories come and go (pods): start over rather than stop
      // watching; the 500 ms rescan covers the moment in between.
      inotify.reset(inotify_init1(IN_CLOEXEC | IN_NONBLOCK));
      watched.clear();
    }
    // IN_DELETE too: a pattern target drops the links of a removed cgroup.
    if (inotify_add_watch(inotify.get(), abs.c_str(), IN_CREATE | IN_DELETE) >=
        0) {
      watched.insert(abs);
    }
  };
  auto watch_parents = [&] {
    for (const auto& [n, t] : state_.targets) {
      if (IsPattern(t)) {
        // From the last walk (Reconcile's, at most 500 ms old).
        for (const std::string& rel : pattern_watch_dirs_[t.id]) {
          watch(rel == "/" ? cgroup_root_ : CgroupAbs(rel));
        }
        continue;
      }
      std::string abs = CgroupAbs(t.cgroup);
      watch(abs.substr(0, abs.rfind('/')));
    }
  };
  watch_parents();
  fprintf(stderr, "egressd: ready on %s (bpffs %s, cgroup2 %s, %zu targets)\n",
          options_.socket_path.c_str(), options_.bpffs_dir.c_str(),
          cgroup_root_.c_str(), state_.targets.size());
  absl::Time next_reconcile = absl::Now();
  absl::Time next_expiry = absl::Now();
  // Accepted connections whose request is not complete yet.
  struct PendingRequest {
    UniqueFd fd;
    std::string buf;
    absl::Time deadline;
  };
  constexpr size_t kMaxPendingRequests = 64;
  std::vector<PendingRequest> pending;
  absl::Time next_learn_save = absl::Now() + absl::Seconds(5);
  while (stop == nullptr || !stop->load()) {
    std::vector<pollfd> fds = {{listener.fd(), POLLIN, 0},
                               {sigfd.get(), POLLIN, 0},
                               {inotify.get(), POLLIN, 0},
                               {policy_watch.get(), POLLIN, 0}};
    for (const PendingRequest& p : pending) {
      fds.push_back({p.fd.get(), POLLIN, 0});
    }
    // Ring-buffer records are submitted without wake-ups; the 50 ms poll
    // timeout is the drain timer.
    int r = poll(fds.data(), fds.size(), 50);
    if (r < 0 && errno != EINTR) return ErrnoStatus(errno, "poll");
    loop_heartbeat_ns_.store(absl::GetCurrentTimeNanos());
    std::lock_guard<std::mutex> lock(mu_);
    if (r > 0 && (fds[1].revents & POLLIN)) {
      signalfd_siginfo si;
      while (read(sigfd.get(), &si, sizeof(si)) == sizeof(si)) {
        if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT) {
          fprintf(stderr, "egressd: stopping; enforcement stays pinned\n");
          events_->Drain().IgnoreError();
          SaveLearned();
          return absl::OkStatus();
        }
        if (si.ssi_signo == SIGHUP && !options_.policy_dir.empty()) {
          ReloadAndLog("SIGHUP");
          watch_parents();
        }
      }
    }
    if (r > 0 && policy_watch && (fds[3].revents & POLLIN)) {
      char buf[4096];
      while (read(policy_watch.get(), buf, sizeof(buf)) > 0) {
      }
      // Editors and ConfigMap updates write in steps: wait for quiet.
      policy_reload_at = absl::Now() + absl::Seconds(1);
    }
    // A rejected directory is tried again now and then: a unit that was not
    // running yet may be by now.
    if (reload_failed_ && policy_reload_at == absl::InfiniteFuture()) {
      policy_reload_at = absl::Now() + absl::Seconds(30);
    }
    if (policy_reload_at != absl::InfiniteFuture() &&
        absl::Now() >= policy_reload_at) {
      policy_reload_at = absl::InfiniteFuture();
      ReloadAndLog("policy directory changed");
      watch_parents();
    }
    bool cgroup_created = false;
    if (r > 0 && (fds[2].revents & POLLIN)) {
      char buf[4096];
      while (read(inotify.get(), buf, sizeof(buf)) > 0) cgroup_created = true;
    }
    if (absl::Now() >= next_expiry) {
      ExpireRules(absl::ToUnixSeconds(absl::Now()));
      next_expiry = absl::Now() + absl::Seconds(1);
    }
    if (absl::Now() >= next_learn_save) {
      SaveLearned();
      next_learn_save = absl::Now() + absl::Seconds(5);
    }
    if (cgroup_created || absl::Now() >= next_reconcile) {
      Reconcile();
      watch_parents();
      next_reconcile = absl::Now() + absl::Milliseconds(500);
    }
    // Requests are read without waiting: a client that connects and sends
    // slowly (or never) costs a slot in `pending`, not the loop's time.
    std::vector<bool> readable(pending.size());
    for (size_t i = 0; i < pending.size(); ++i) {
      readable[i] = r > 0 && (fds[4 + i].revents & (POLLIN | POLLHUP));
    }
    if (r > 0 && (fds[0].revents & POLLIN)) {
      // Bounded: at most 64 new connections per iteration.
      for (int i = 0; i < 64; ++i) {
        auto conn = listener.Accept();
        if (!conn.ok()) break;
        if (absl::Status st = CheckPeerIsRoot(conn->get()); !st.ok()) {
          WriteResponse(conn->get(), ErrorResponse(st)).IgnoreError();
          continue;
        }
        if (pending.size() >= kMaxPendingRequests) {
          WriteResponse(conn->get(),
                        ErrorResponse(absl::ResourceExhaustedError(
                            "egressd is busy: too many unfinished requests")))
              .IgnoreError();
          continue;
        }
        pending.push_back(
            {*std::move(conn), std::string(), absl::Now() + absl::Seconds(5)});
        readable.push_back(true);  // egressctl sends at once: try now
      }
    }
    std::vector<PendingRequest> still;
    for (size_t i = 0; i < pending.size(); ++i) {
      PendingRequest& p = pending[i];
      absl::StatusOr<std::optional<json>> req = std::optional<json>();
      if (readable[i]) req = ReadAvailableRequest(p.fd.get(), &p.buf);
      if (req.ok() && !req->has_value()) {
        if (absl::Now() < p.deadline) {
          still.push_back(std::move(p));
        } else {
          WriteResponse(p.fd.get(),
                        ErrorResponse(absl::DeadlineExceededError(
                            "control socket: no complete request in 5 s")))
              .IgnoreError();
        }
        continue;
      }
      if (!req.ok()) {
        WriteResponse(p.fd.get(), ErrorResponse(req.status())).IgnoreError();
        continue;
      }
      const json& request = **req;
      json resp = Handle(request);
      WriteResponse(p.fd.get(), resp).IgnoreError();
      if (resp.value("ok", false) &&
          request.value("cmd", std::string()) == "events" &&
          request.value("follow", false)) {
        // The connection stays open: records follow as JSON lines.
        Subscriber sub;
        sub.target = request.value("target", std::string());
        sub.verdict = VerdictFilter(request.value("verdict", std::string()));
        fcntl(p.fd.get(), F_SETFL, fcntl(p.fd.get(), F_GETFL) | O_NONBLOCK);
        sub.fd = std::move(p.fd);
        subscribers_.push_back(std::move(sub));
      }
      watch_parents();
    }
    pending = std::move(still);
    events_->Drain().IgnoreError();
    FlushSubscribers();
  }
  return absl::OkStatus();
}

}  // namespace egress
