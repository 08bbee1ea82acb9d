// The rule engine: egressd's targets and their rules, kept in line with the
// kernel through a KernelPort. It adds and removes targets, attaches them to
// their cgroups (and re-attaches re-created ones), switches rule sets without
// a gap, ends temporary rules and applies policies.
//
// Threads: every method may be called from any thread; one mutex guards the
// state. Changes are meant to come from one thread at a time (egressd's
// worker): the heavy parts of a change (compiling, writing map entries,
// saving the state file) run without the lock, so the loop that serves
// reads and reconciles cgroups never waits for them. With
// EngineOptions::background_spares a thread of the engine's own writes
// spare rule sets, one chunk per hold of the lock (engine_spares.cc).
#ifndef EGRESS_USERSPACE_DAEMON_ENGINE_H_
#define EGRESS_USERSPACE_DAEMON_ENGINE_H_

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "egress/dns_abi.h"
#include "userspace/control/protocol.h"
#include "userspace/daemon/kernel_port.h"
#include "userspace/daemon/map_room.h"
#include "userspace/daemon/removed_targets.h"
#include "userspace/daemon/self_check_plan.h"
#include "userspace/daemon/state.h"
#include "userspace/daemon/state_write.h"
#include "userspace/policy/compile.h"

namespace egress {

// FailedPrecondition for a change to an orphan (a target found pinned
// without state, engine_orphans.cc); OK for any other target.
absl::Status RefuseOrphan(const TargetState& t);

// Every entry of a compiled set, over all the rule maps.
uint64_t TotalEntries(const policy::CompiledRuleset& set);

struct EngineOptions {
  // Persists what a change changed (all of it or nothing); called before
  // the change takes effect.
  std::function<absl::Status(const StateWrite&)> save;
  // Optional, both or neither: stores the rules of the targets an apply
  // creates or whose rules it replaces ahead of the save that adds or
  // switches each (RulesDelta::written_ahead), rows no saved target owns
  // until then, a stored target's rows left as they were
  // (StateStore::WriteRulesAhead); and deletes such rows of targets that
  // were not added or switched after all. The
  // first runs on a thread of its own while the apply compiles and writes
  // the maps; nothing else saves meanwhile, and the apply waits for it
  // before it saves anything else.
  std::function<absl::Status(const std::vector<const TargetState*>&)>
      save_rules_ahead;
  std::function<absl::Status(const std::vector<std::string>&)> drop_rules_ahead;
  // The cgroup of a systemd unit / of a process ("" root-relative or with
  // the mount prefix; NormalizeCgroupPath makes it relative).
  std::function<absl::StatusOr<std::string>(const std::string&)> unit_cgroup;
  std::function<absl::StatusOr<std::string>(int)> pid_cgroup;
  // The uid of a user name in the passwd database (a user target named by
  // name; a uid in digits is never looked up). NotFound for no such user.
  std::function<absl::StatusOr<uint32_t>(const std::string&)> user_uid;
  // The seam between workloads and enforcement: the cgroups (relative to
  // the cgroup2 mount) of the running containers a workload target selects
  // (IsWorkload). Each is enforced by the target's program set, attached
  // like a pattern's matches; none when unset.
  std::function<std::vector<std::string>(const TargetState&)> workload_cgroups;
  // Optional, both or neither: called with the engine's lock held around
  // the attaching of a reconcile pass's targets, so that workload_cgroups
  // answers all of them from one look at the running containers instead of
  // one look per target.
  std::function<void()> workload_pass_begin, workload_pass_end;
  // Turns an operator's cgroup path into one relative to the cgroup2 mount.
  std::function<absl::StatusOr<std::string>(const std::string&)>
      normalize_cgroup;
  // Called with each line worth a log entry (attachments, expiries).
  std::function<void(const std::string&)> log;
  // Called after a reconcile in which every target attached (an upgrade
  // retires the older version's pins then).
  std::function<void()> all_attached;
  // egress_target_config.dns_ttl_floor of every target (seconds).
  uint16_t dns_ttl_floor = EGRESS_DNS_TTL_FLOOR_DEFAULT;
  // The rule maps' max_entries: every change keeps room for a swap copy of
  // the largest rule set (map_room.h). Tests make it small.
  EntryCounts map_capacity = MapCapacity();
  // Background spares (engine_spares.cc): after every change and after
  // Start, a thread of the engine's own writes a spare copy of each active
  // set that has none, `spare_chunk` entries per hold of the lock, so the
  // next change of the target writes only its difference. egressd turns it
  // on; the engine tests that count map contents leave it off.
  bool background_spares = false;
  size_t spare_chunk = 2048;
  // Tests: called by the spare writer after each chunk, without the lock
  // (blocking here holds the writer between two chunks).
  std::function<void()> spare_chunk_written;
};

// What a record needs to know about its target.
struct RecordTarget {
  std::string name;          // "" when the target is unknown
  uint32_t rule_number = 0;  // the rule's place in `list` (0 = none)
  policy::LoggingLevel logging = policy::LoggingLevel::kDenied;
  policy::Mode mode = policy::Mode::kEnforce;
  // The target was removed a moment ago (RemovedTargets): `name` is the
  // one it had, the rest is unknown.
  bool removed = false;
};

class Engine {
 public:
  Engine(KernelPort& kernel, DaemonState state, EngineOptions options);
  // Stops the spare writer (StopSpares).
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Brings the kernel in line with the state at start: programs loaded,
  // rule sets rewritten (ending temporary rules that ran out at `now`),
  // pinned program sets the state does not hold adopted as orphans, links
  // attached or adopted, stale rule sets swept (an orphan's kept). Returns true
  // when every target is attached.
  absl::StatusOr<bool> Start(int64_t now);

  // ---- Changes ----
  absl::StatusOr<control::TargetAddResponse> AddTarget(
      const control::TargetSpec& spec);
  absl::StatusOr<control::TargetRemoveResponse> RemoveTarget(
      const std::string& name);
  absl::StatusOr<control::ModeResponse> SetMode(
      const control::ModeRequest& request);
  absl::StatusOr<control::LoggingResponse> SetLogging(
      const control::LoggingRequest& request);
  absl::StatusOr<control::RuleAddResponse> AddRule(
      const control::RuleAddRequest& request, int64_t now);
  absl::StatusOr<control::RuleDeleteResponse> DeleteRule(
      const control::RuleDeleteRequest& request);
  // Validates every policy, returns the diff and (unless dry_run) switches
  // each target's rules; nothing changes when anything is invalid. By value:
  // the policies' rules move into the plan (100,000 rules are not copied).
  absl::StatusOr<control::ApplyResponse> Apply(control::ApplyRequest request,
                                               int64_t now);
  // Removes temporary rules that end at or before `now`; returns how many.
  // The targets that lost rules are added to `changed` when given.
  int ExpireRules(int64_t now, std::vector<std::string>* changed = nullptr);
  // The second before which ExpireRules has nothing to do (no temporary
  // rule ends earlier); 0 when not known since the last change of rules,
  // INT64_MAX when no rule is temporary. Learned by ExpireRules.
  int64_t NoExpiryBefore() const;
  // Re-attaches targets whose cgroup was re-created, follows pattern
  // matches. Returns how many targets were (re)attached; *failed is set
  // when an attachment failed. The links of single-cgroup targets are read
  // without the lock first; only a target whose reading asks for work
  // (not all live, a pin to make again) is attached or repaired under it.
  int Reconcile(bool* failed = nullptr);
  // Re-reads the link health of the cgroups the last reconcile found (no
  // walk, no attach): what `status` reports is what the kernel has now.
  // The kernel is read without the lock (KernelPort::ReadLinks, no repair)
  // and a target's reading kept only when its attachments did not change
  // meanwhile (LinkEpoch), so reads never wait for the kernel.
  void RefreshLinkHealth();
  void NotifyAllAttached() const {
    if (options_.all_attached) options_.all_attached();
  }

  // ---- Reads ----
  // One target or, with "" and `all`, every target.
  absl::StatusOr<std::vector<TargetState>> Targets(const std::string& name,
                                                   bool all) const;
  // The same without their rules (`rules` empty): for callers that need a
  // target's settings or cgroups only, or its rules only sometimes (a look
  // at connections after a change, when the target has any). Copying the
  // rules of a 100,000-rule target costs more than such a caller's work.
  absl::StatusOr<std::vector<TargetState>> TargetsWithoutRules(
      const std::string& name, bool all);
  // A copy of one target's rules. NotFound for an unknown target.
  absl::StatusOr<std::vector<policy::Rule>> RulesOf(
      const std::string& name) const;
  std::vector<control::TargetInfo> TargetInfos() const;
  // Only the targets that select containers: what the reconciler asks on
  // every pass, without counting the rules of every other target.
  std::vector<control::TargetInfo> WorkloadTargetInfos() const;
  absl::StatusOr<control::ListResponse> List(const std::string& name) const;
  RecordTarget LookupRecord(uint32_t target_id, uint32_t rule_id) const;
  // Erases from `by_rule_id` the rule ids target `target_id` has no rule of
  // now (all of them for an unknown target), keeping 0 (the default
  // action): the kernel keeps a deleted rule's hits, but the series of a
  // rule that no longer exists must go. An orphan's (rules unknown) are all
  // kept.
  void EraseGoneRules(uint32_t target_id,
                      std::map<uint32_t, uint64_t>& by_rule_id) const;
  // The names a TCP/UDP verdict record concerns (docs/events.md): the names
  // of the deciding rule when a name decided it (the rule names domains and
  // none of its addresses holds the destination); for a refusal by default
  // (or its audit), the names of the allow rules for its port and protocol,
  // which the address was not learned for. Both empty otherwise.
  void RecordNames(const egress_event& e,
                   std::vector<std::string>* destination_names,
                   std::vector<std::string>* unlearned_names) const;
  // The path (below the mount) of a cgroup id inside a target's subtree.
  std::string CgroupPath(uint64_t cgroup_id, uint32_t target_id);
  // Every cgroup a target covers: the cgroups it is attached to (the last
  // reconcile's) and their descendants, id -> path below the mount. At most
  // kMaxSubtreeCgroups directories are read.
  std::map<uint64_t, std::string> SubtreeCgroups(uint32_t target_id);
  static constexpr size_t kMaxSubtreeCgroups = 10000;
  // Directories where re-created or new target cgroups appear (relative).
  std::vector<std::string> WatchDirs() const;
  size_t TargetCount() const;

  // ---- Workload parents (engine_watch.cc) ----
  // A workload parent is a cgroup whose children are made by a runtime
  // (containers: /system.slice with docker-*.scope, /docker, kubepods). Its
  // watch instance (bpf/lib/config.h) decides for every child from the
  // child's first instruction: by the classification below once egressd
  // made it, and until then by the parent's default, which records carry as
  // reason UNCLASSIFIED. Registrations are not saved: the caller makes them
  // again after a restart (the kernel keeps enforcing them meanwhile).
  enum class WorkloadDefault { kDeny, kAudit };
  // Watches `parent` (relative to the cgroup2 mount, or with the mount
  // prefix) as a workload parent with `def` for unclassified children; a
  // second call changes the default. Errors: InvalidArgument for the root,
  // NotFound for a parent that does not exist, the kernel's of a load,
  // attach or map write.
  absl::Status RegisterWorkloadParent(const std::string& parent,
                                      WorkloadDefault def);
  // Ends it: unclassified children pass again (the watch instance goes when
  // no unit or path target needs it either). No registration is no error.
  absl::Status UnregisterWorkloadParent(const std::string& parent);
  // Classifies a child cgroup of a workload parent: target `target`'s (its
  // config and rules decide; the target need not be attached anywhere),
  // or, with "", no target's (passes). NotFound for an unknown target;
  // the kernel's error of the map write.
  absl::Status ClassifyWorkloadCgroup(uint64_t cgroup_id,
                                      const std::string& target);
  // Marks a classified child as served by its target's own program set,
  // attached to it now: the parent's set lets it pass, so nothing is
  // decided (and counted) twice.
  absl::Status CoverWorkloadCgroup(uint64_t cgroup_id);
  // Forgets a classification (the cgroup is gone). Missing is no error.
  absl::Status ForgetWorkloadCgroup(uint64_t cgroup_id);
  // Detaches workload target `target`'s own program set from each cgroup of
  // `cgroups` (cgroup id -> path below the mount) it is attached to: the
  // cgroups of running workloads the target no longer selects (a container
  // renamed away from its name, relabelled). Reconcile never does that by
  // itself: it lifts a workload target only from a cgroup that is gone, as
  // a runtime that answers nothing must not lift enforcement. Returns the
  // paths detached from. NotFound for an unknown target, InvalidArgument
  // for one that selects no workloads, the kernel's error of a detach.
  absl::StatusOr<std::vector<std::string>> DetachWorkloadCgroups(
      const std::string& target,
      const std::map<uint64_t, std::string>& cgroups);
  // Classifies a child of workload parent `parent` by its directory name
  // before it exists (a container created and not started yet, whose
  // cgroup will be `parent`/`name`): from its mkdir on it is target
  // `target`'s, or with "" no target's (passes), until a classification by
  // id (which the watch instance reads first) or ForgetWorkloadChildName.
  // Writing the same name again changes its target. InvalidArgument for a
  // name that cannot be a cgroup's or is too long; NotFound for a missing
  // parent or an unknown target; AlreadyExists for a name a unit or path
  // target's cgroup has there; the kernel's error of the map write.
  absl::Status NameWorkloadChild(const std::string& parent,
                                 const std::string& name,
                                 const std::string& target);
  // Forgets such a name (the container runs and is classified by id, or is
  // gone), also one written ahead. Missing is no error.
  absl::Status ForgetWorkloadChildName(const std::string& parent,
                                       const std::string& name);
  // NameWorkloadChild's way ahead of the next pass, for a container just
  // created: without the engine's lock, which a pass holds for seconds
  // while a burst of container starts contends for the kernel's cgroup
  // lock (an attach waits for it), while Docker starts the container in
  // milliseconds. It writes the name only where the map names nothing yet
  // (AlreadyExists otherwise: a unit or path target's cgroup, or named
  // already), as `target_id` (WorkloadTargetInfos' id; 0: no target's).
  // The next NameWorkloadChild of the name takes it over (its target is
  // checked then); ForgetWorkloadChildName and the parent's unregistering
  // delete it.
  absl::Status NameWorkloadChildAhead(const std::string& parent,
                                      const std::string& name,
                                      uint32_t target_id);

  // ---- Background spares (engine_spares.cc) ----
  // Stops the spare writer and joins its thread; the entries of a spare it
  // had not finished are deleted (what a restart would sweep). Changes
  // after this keep and use spares as without the writer. Idempotent.
  void StopSpares();
  // Waits until the spare writer has nothing left to do (every target that
  // can have a spare has a whole one, or no room for it), at most
  // `timeout`. True when it is idle (also when it does not run).
  bool WaitForSpares(absl::Duration timeout);
  // Rule map entries written or deleted since the start: by changes (a set
  // written whole, or only what differs from a spare) and by the spare
  // writer.
  struct EntryWrites {
    uint64_t by_changes = 0;
    uint64_t by_spare_writer = 0;
  };
  EntryWrites EntriesWritten() const;

  // ---- Field self-check (engine_health.cc) ----
  struct SelfCheckTarget {
    uint32_t id = 0;
    std::string name;
    std::string cgroup;                     // relative to the cgroup2 mount
    std::optional<ProbeDestination> probe;  // none: the policy denies none
    // 0 of 0 when the last reconcile did not find the cgroup.
    uint64_t hooks_attached = 0, hooks_total = 0;
  };
  // Every enforcing single-cgroup target whose cgroup exists, as of the
  // last reconcile. Forgets the outcome of every other target (removed,
  // turned to audit, cgroup gone): it is not checked now.
  std::vector<SelfCheckTarget> SelfCheckTargets();
  // Records the outcome of a target's self-check ("" = healthy). True when
  // it turned from healthy (or unchecked) to degraded; each failure counts
  // in SelfCheckFailures.
  bool SetSelfCheck(uint32_t id, const std::string& why);
  uint64_t SelfCheckFailures() const;

 private:
  struct Change;  // a rule set switch in the making (engine_rules.cc)
  using Lock = std::unique_lock<std::mutex>;
  // A rule set compiled (and maybe written to the maps) ahead of its switch.
  struct Staged {
    uint32_t ruleset = 0;
    size_t exact_limit = 0;  // ExactLimitLocked() when the id was taken
    policy::CompiledRuleset compiled;
    bool written = false;
    // A new or updated target's rules are in the state already, no
    // target's rows yet (EngineOptions::save_rules_ahead): its save adds or
    // switches only its row.
    bool rules_saved_ahead = false;
  };

  absl::StatusOr<TargetState*> Find(const std::string& name);
  absl::StatusOr<const TargetState*> Find(const std::string& name) const;
  // By the id records carry: one hash lookup per record.
  const TargetState* FindById(uint32_t id) const;
  absl::StatusOr<std::string> ResolveCgroup(policy::TargetSource source,
                                            const std::string& value);
  absl::StatusOr<uint32_t> ResolveUser(const std::string& user) const;
  // The user target that holds `uid`, or nullptr.
  const TargetState* UserTargetOf(uint32_t uid) const;
  // Lifts a user target's uid (its entry in user_targets) and, when no
  // other user target remains, detaches the root program set.
  void LiftUser(uint32_t uid, uint32_t id);
  // Detaches the root program set of user targets when no user target but
  // the one of id `leaving` (0: none) is left.
  void DropRootSetIfUnused(uint32_t leaving);
  absl::StatusOr<uint32_t> AllocateTargetId();
  uint32_t NextRuleset();
  absl::Status WriteConfig(const TargetState& t);
  // Saves the targets in `targets` (made by WriteOf) and the ruleset
  // counter.
  absl::Status SaveLocked(Lock& lock, std::vector<TargetWrite> targets = {});
  // The write of one target as state_ holds it now (removed when it is gone
  // or an orphan, which is never stored).
  TargetWrite WriteOf(const std::string& name,
                      std::optional<RulesDelta> rules) const;
  // Sets one setting (mode, logging) of a target, saves the state, then
  // rewrites its config; a failed save puts the old value back.
  template <typename T>
  absl::Status ChangeSetting(Lock& lock, TargetState& t, T TargetState::*field,
                             T value);

  // Rule set switches (engine_rules.cc). Replace = Prepare (locked) ->
  // Build (unlocked: compile, write, save) -> Commit (locked).
  absl::Status ReplaceRules(const std::string& name,
                            std::vector<policy::Rule> rules,
                            std::optional<policy::Mode> mode,
                            Staged* staged = nullptr);
  // ReplaceRules with the target's rules and `rule` at the end. When only
  // the port classes `rule` reaches are compiled again (RecompileChanged),
  // the change holds `rule` alone: none of the target's rules is copied and
  // the store writes one row (RulesDelta::appended_after).
  absl::Status AppendRule(const std::string& name, policy::Rule rule);
  // A change's new rules: `all`, or (`appended` set) the target's rules as
  // they are when the change is prepared, then `appended`.
  struct NewRules {
    std::vector<policy::Rule> all;
    std::optional<policy::Rule> appended;
  };
  // What a switch does when the store has no room (ResourceExhausted):
  // refuses it (every change), or switches anyway (Start writing a target's
  // stored rules, or those of them still in force, to the maps again: the
  // store keeps what it had, the target goes to store_behind_).
  enum class NoRoom { kRefuse, kSwitch };
  absl::Status Replace(const std::string& name, NewRules rules,
                       std::optional<policy::Mode> mode, Staged* staged,
                       NoRoom no_room = NoRoom::kRefuse);
  // `t`'s rules are lent out and back (never copied): it is not changed.
  Change Prepare(TargetState& t, NewRules rules, Staged* staged);
  absl::Status Build(Change& change);
  absl::Status Commit(Lock& lock, Change& change);
  // After a switch of target `id`'s rules: deletes the rule_hits keys of
  // its rules that are gone, so that rule churn never fills the map (shared
  // by every target). A hook that read the old rule set just before the
  // switch may count a gone rule once more after the delete: that key goes
  // at the target's next change or removal. Rule ids are never reused
  // within a target, so no hit is ever counted for another rule. Failures
  // are logged (the keys stay, as before). Called without mu_.
  void DeleteGoneRuleHits(uint32_t id);
  // Deletes every rule_hits key of target `id` (removed). mu_ held.
  void DeleteAllRuleHitsLocked(uint32_t id);
  void Discard(Change& change);
  // Deletes the spare a change took (a failed diff leaves it unknown).
  void DropChangeSpare(Change& change);
  // Refuses (ResourceExhausted, with the numbers) a change that gives the
  // named targets these compiled sets when the maps could not take them
  // beside what is held, or would then lack room for a swap copy
  // (map_room.h). Targets not named keep their sets.
  // Spares (spares_) and replaced sets not yet deleted (retiring_) count
  // as held; when the change does not fit with them, the replaced sets are
  // deleted and the check made again, then (still short) every spare (and
  // `consuming`, a spare a change took out of spares_, cleared to ruleset
  // 0) and the check made again.
  absl::Status CheckMapRoomLocked(
      const std::map<std::string, EntryCounts>& next,
      policy::CompiledRuleset* consuming = nullptr);
  absl::Status CheckMapRoom(const std::map<std::string, EntryCounts>& next,
                            policy::CompiledRuleset* consuming = nullptr);
  // The name of target `id`'s spare among those rows.
  static std::string SpareRow(uint32_t id);
  // The rows CheckRoom needs for the maps as they are: every target's
  // active set, held and kept, plus every spare.
  std::vector<TargetEntries> HeldRowsLocked(
      const std::map<std::string, EntryCounts>& next,
      const policy::CompiledRuleset* consuming) const;
  // How many exact_rules entries a set compiled now may make: every one it
  // can while the map keeps room for three more sets of the most one set
  // makes, none after that (the entries stay in the tries, which decide
  // the same). So the smaller hash does not refuse a policy the tries
  // would take.
  size_t ExactLimitLocked() const;
  // Keeps a replaced set as its target's spare when the maps keep room for
  // a swap copy of the largest set with it there; deletes it otherwise.
  void KeepOrDeleteSpareLocked(uint32_t id, policy::CompiledRuleset replaced);
  // Takes a target's spare out of spares_ (and its source out of
  // spare_sources_): its entries stay in the maps. Ruleset 0: none.
  policy::CompiledRuleset TakeSpareLocked(uint32_t id);
  // Deletes a target's spare from the maps (and from spares_).
  void DropSpareLocked(uint32_t id);
  // Deletes the entries of a set no lookup reads any more; a failure leaves
  // them (a start sweeps rulesets no target uses) and is logged.
  void DeleteStaleEntries(const policy::CompiledRuleset& set);
  void DropSparesLocked();

  // The spare writer (engine_spares.cc).
  void StartSparesLocked();
  void PokeSparesLocked();
  void SpareLoop();
  // One step of the writer, under the lock: the next chunk of the spare
  // being written (or of one being deleted), else a spare started for a
  // target without one (not those in `skipped`: no room this pass), else a
  // chunk of a retiring set deleted. False when there is nothing to do.
  bool SpareStepLocked(std::set<uint32_t>& skipped);
  // Starts a spare for the first target without one (not in `skipped`)
  // and writes its first chunk; false when none was started.
  bool StartSpareLocked(std::set<uint32_t>& skipped);
  // True when the maps keep room (map_room.h) for target `id`'s spare
  // grown to the size of `active`.
  bool SpareFitsLocked(uint32_t id, const policy::CompiledRuleset& active);
  // Writes up to options_.spare_chunk more entries of `active` into the
  // spare; false when that failed (the spare is deleted).
  bool FillSpareLocked(uint32_t id, const policy::CompiledRuleset& active);
  // Deletes up to options_.spare_chunk entries of the spare from its end;
  // the spare goes when it is empty.
  void ShrinkSpareLocked(uint32_t id);
  // At start, before the sweep: gives each target with no spare a copy of
  // its active set found in the maps under a ruleset not in `keep` (the
  // spare a stopped or killed egressd left), whole, and adds that id to
  // `keep`; each copy goes to one target. Returns how many were adopted.
  // Errno status of the maps' walk.
  absl::StatusOr<size_t> AdoptSparesLocked(std::set<uint32_t>& keep);
  // At start: takes the target's rule set as it is in the maps when every
  // entry of its rules compiled under its ruleset id is there (no second
  // copy written). False when it is not all there.
  absl::StatusOr<bool> AdoptRules(const std::string& name);

  // Attachments (engine_attach.cc).
  absl::StatusOr<bool> Attach(const TargetState& t);
  absl::StatusOr<bool> AttachPattern(const TargetState& t);
  // A user target: the root program set attached at the cgroup2 root (once
  // for all user targets), then the uid's entry.
  absl::StatusOr<bool> AttachUser(const TargetState& t);
  // The program set that enforces `t`: its own, or the root set of user
  // targets (EGRESS_TARGET_BY_UID).
  static uint32_t ProgramSetOf(const TargetState& t);
  // Sets / forgets what links_ holds for a target; each change gives the
  // target a new epoch (link_epochs_), so a reading taken off the lock
  // before it is not kept.
  void SetLinks(uint32_t id, std::vector<control::CgroupRef> cgroups,
                LinkHealth health);
  void ForgetLinks(uint32_t id);
  uint64_t LinkEpoch(uint32_t id) const;
  // A single-cgroup target's links read off the lock by Reconcile.
  struct LinkReading {
    uint32_t id = 0;
    std::string cgroup;
    uint64_t epoch = 0;
    absl::StatusOr<uint64_t> cgroup_id;
    LinkHealth health;
  };
  // True when the reading shows Attach() would change nothing: every hook
  // live on the cgroup as it is now, no pin to make again.
  bool Settled(const TargetState& t, const LinkReading& r) const;
  // kernel_.Links(), logging pins that had been removed and are back.
  LinkHealth LinksOf(const TargetState& t, uint64_t link_set,
                     uint64_t cgroup_id);
  std::vector<std::string> TargetCgroups(const TargetState& t);
  // Unavailable when the target's cgroup exists but its hooks are not all
  // on it, even after one more attach: a change to its rules would be
  // acknowledged and not enforced.
  absl::Status CheckEnforced(const TargetState& t);
  // Makes lost pins again (KernelPort::RepairPins) and says so once.
  void RepairPins();
  control::TargetInfo InfoLocked(const TargetState& t) const;
  std::map<uint64_t, std::string> SubtreeLocked(const TargetState& target);
  void Log(const std::string& line) const;
  // Logs `line` under `key` (a target id, or kPinsLogKey) only when it
  // differs from the last line logged under it; "" means all is well again.
  void LogChange(uint32_t key, const std::string& line);
  static constexpr uint32_t kPinsLogKey = 0;

  // Watch instances of unit and path targets (engine_watch.cc): the watch
  // instance of the target cgroup's parent knows the cgroup by name, so a
  // re-created one is enforced before Attach reaches it. Never fails the
  // attach (the target's own instance still enforces); logs why not.
  void WatchTarget(const TargetState& t);
  // The target's own instance is live on `cgroup_id`: its parent's watch
  // instance lets that cgroup be (EGRESS_CGROUP_COVERED).
  void CoverTarget(const TargetState& t, uint64_t cgroup_id);
  // Forgets a target's name and cover; drops the parent's watch instance
  // when nothing needs it any more.
  void UnwatchTarget(uint32_t id);
  void DropParentIfUnused(uint64_t parent_id);
  // Removes the watch instances of parents whose cgroup is gone (removed
  // while egressd ran, or while it was down): their links are defunct and
  // their pins would stay forever. A target watching one is watched again
  // at the parent made again.
  void SweepGoneParents();
  // Whether a unit or path target's cgroup is `name` under `parent_id`.
  bool TargetWatchesName(uint64_t parent_id, const std::string& name) const;
  // What cgroup_classes or watch_names say for a workload of `target`:
  // its id, or EGRESS_CGROUP_NOT_SELECTED for "" (mu_ held).
  absl::StatusOr<uint32_t> WorkloadClassValue(const std::string& target) const;

  // Targets (engine_targets.cc).
  absl::StatusOr<TargetState> NewTarget(const control::TargetSpec& spec);
  absl::Status CreateTarget(Lock& lock, TargetState t,
                            std::vector<policy::Rule> rules,
                            Staged* staged = nullptr);

  // Orphans (engine_orphans.cc): adds every pinned program set the state
  // does not hold as "orphan-<id>"; deletes a removed orphan's entries.
  void AdoptOrphans();
  // Same for user_targets entries the state does not hold (orphan user
  // targets); entries naming another target's id are deleted. Then the
  // root program set is detached when no user target is left.
  void AdoptUserOrphans();
  absl::Status RemoveOrphanEntries(const TargetState& t);

  // Apply (engine_apply.cc).
  absl::StatusOr<std::vector<struct ResolvedPolicy>> Resolve(
      std::vector<control::TargetSpec> policies);
  // `policies` are the plans' own (by index), for the files errors name.
  // `before_room` runs after the compiles, before the room check and the
  // writes.
  absl::Status StageAll(const std::vector<struct TargetPlan>& plans,
                        const std::vector<struct ResolvedPolicy>& policies,
                        std::vector<Staged>& staged,
                        const std::function<void()>& before_room);
  // `replaced`: the sets switched away from, by target id.
  absl::Status SwitchUpdates(
      Lock& lock, std::vector<struct TargetPlan>& plans,
      std::vector<Staged>& staged,
      std::vector<std::pair<uint32_t, policy::CompiledRuleset>>& replaced);
  // A set no lookup reads any more (target `id` switched away from it):
  // handed to the spare writer (retiring_), which deletes it chunk by chunk
  // after the answer, once no spare is left to write, when the target has
  // no spare and no set retiring already (one each, as a spare: applies in
  // a row never pile up sets whose room and exact_rules entries count);
  // deleted now otherwise, or when the writer does not run.
  void RetireSetLocked(uint32_t id, policy::CompiledRuleset set);
  // Deletes up to options_.spare_chunk entries of a retiring set from its
  // end; the set goes from retiring_ when it is empty.
  void ShrinkRetiringLocked();
  // Deletes every retiring set now (a change needs the room, or the writer
  // stops).
  void DropRetiringLocked();

  KernelPort& kernel_;
  EngineOptions options_;
  mutable std::mutex mu_;
  DaemonState state_;
  // See NoExpiryBefore(); reset by every switch of a target's config.
  int64_t no_expiry_before_ = 0;
  // Target id -> name, kept with state_.targets (records name targets by id).
  absl::flat_hash_map<uint32_t, std::string> names_by_id_;
  // The names of targets removed a moment ago, for their records still in
  // the ring buffer (LookupRecord).
  RemovedTargets removed_;
  // The compiled form of each target's active rule set (by target id), so
  // the old set's entries are deleted without compiling it again.
  std::map<uint32_t, policy::CompiledRuleset> compiled_;
  // Each target's previous rule set, left in the maps under its own ruleset
  // id: the next change of the target writes only what differs into it and
  // flips to it (compiled_diff.h), so one rule added to 100,000 writes a
  // few entries. A cache of map contents, dropped when room is short.
  std::map<uint32_t, policy::CompiledRuleset> spares_;
  // The spares_ the writer is filling: target id -> the ruleset of the
  // active set it copies. Such a spare holds exactly the entries written so
  // far (the first ones of each of that set's entry lists, under the
  // spare's id), so a change may take it at any point and write the rest
  // (DiffCompiled). 0: a spare being deleted chunk by chunk (its set was
  // replaced, or the maps lack room for it whole).
  std::map<uint32_t, uint32_t> spare_sources_;
  // Sets an apply switched away from, not yet deleted (RetireSetLocked):
  // no target's and no spare, deleted by the spare writer after the copies
  // of the new sets (an `allow` right after a replacing apply then finds
  // the new set's spare whole). Held in the maps' room until gone; a
  // change short of room deletes them at once (CheckMapRoomLocked).
  std::map<uint32_t, policy::CompiledRuleset> retiring_;  // by target id
  // Entries of spares an apply took out of spares_ and deletes on a thread
  // of its own while it compiles (engine_apply.cc): still in the maps, so
  // every room check counts them until they are gone.
  std::vector<EntryCounts> spares_dropping_;
  // Changes (Replace, Apply) running: the writer starts no new spare
  // meanwhile (it would copy a set about to be replaced).
  int changes_in_flight_ = 0;
  std::thread spare_thread_;
  std::condition_variable spare_cv_;       // with mu_: poke or stop
  std::condition_variable spare_idle_cv_;  // with mu_: a pass ended
  bool spare_started_ = false;
  bool spare_poked_ = false;
  bool spare_busy_ = false;
  bool spare_stop_ = false;
  std::atomic<uint64_t> change_writes_{0};
  std::atomic<uint64_t> spare_writes_{0};
  // Rule id -> list number, per target id (rebuilt when the set changes).
  struct RuleIndex {
    uint32_t ruleset = 0;
    absl::flat_hash_map<uint32_t, uint32_t> numbers;
    std::vector<size_t> name_rules;  // places of the rules with names
  };
  // The target's index, rebuilt when its rule set changed (mu_ held).
  const RuleIndex& IndexLocked(const TargetState& target) const;
  mutable std::map<uint32_t, RuleIndex> rule_numbers_;
  std::map<uint32_t, std::vector<std::string>> pattern_watch_dirs_;
  // Link health per target id from the last reconcile or refresh (for
  // status/metrics without walking the kernel again).
  std::map<uint32_t, std::pair<std::vector<control::CgroupRef>, LinkHealth>>
      links_;
  std::map<uint32_t, uint64_t> link_epochs_;  // SetLinks
  uint64_t last_link_epoch_ = 0;
  uint32_t last_target_id_ = 0;  // AllocateTargetId: ids go round
  std::map<uint64_t, std::string> cgroup_paths_;  // record cgroup names
  // Targets being created: not attached by Reconcile before their rules.
  std::set<uint32_t> creating_;
  // Targets whose enforced rules the store may not hold (Start switched
  // them with no room to store them): their next rule change is written
  // whole, not as a delta of rows the store may not have.
  std::set<std::string> store_behind_;
  std::map<uint32_t, std::string> last_logged_;  // LogChange
  std::map<uint32_t, std::string> degraded_;     // self-check: id -> why
  // Watch instances (engine_watch.cc): per target, the parent and name its
  // parent's instance knows it by, the cgroup id marked covered and the
  // last reason it is not watched (logged once); per watched parent id, its
  // path, the targets named there and a workload default.
  struct TargetWatch {
    uint64_t parent_id = 0;
    std::string name;
    uint64_t covered = 0;
    std::string not_watched;
  };
  std::map<uint32_t, TargetWatch> target_watch_;
  struct ParentWatch {
    std::string rel;
    std::set<uint32_t> targets;
    std::optional<WorkloadDefault> workload;
  };
  std::map<uint64_t, ParentWatch> parent_watch_;
  // Gone parents whose watch instance could not be removed (logged once).
  std::set<uint64_t> unswept_parents_;
  // Workload children named before they exist: {parent path, name} -> the
  // parent's cgroup id the name was written under.
  std::map<std::pair<std::string, std::string>, uint64_t> workload_names_;
  // The same for names written ahead (NameWorkloadChildAhead) and not taken
  // over yet; guarded by names_mu_ alone (taken after mu_ when both are).
  std::mutex names_mu_;
  std::map<std::pair<std::string, std::string>, uint64_t> ahead_names_;
  uint64_t self_check_failures_ = 0;
};

}  // namespace egress

#endif  // EGRESS_USERSPACE_DAEMON_ENGINE_H_
