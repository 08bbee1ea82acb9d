// egress_bench: what enforcement costs the enforced processes.
//
// Sets up enforcement directly through the library (pinned maps and programs
// under /sys/fs/bpf/egress-bench-<pid>, one target attached to a fresh
// cgroup), loads N synthetic rules (bench_rules.h) for N = 1, 1,000 and
// 100,000, and measures loopback operations (bench_ops.h) from a worker that
// moves itself back and forth between that cgroup and an identical one with
// nothing attached, in short alternating slices. The reported ratio is the
// median over baseline/enforced pairs of enforced time per operation over
// baseline time per operation, by wall clock and by the worker's CPU time.
// See bench/README.md.
//
//   sudo build/bench/egress_bench [--rounds=25] [--rules=1,1000,100000]
//                                 [--time_scale=1.0] [--verbose]
//                                 [--mode=target|users|users+skb|names|audit]
//                                 [--empty_hooks=on|off]
//
// --mode=users measures what user targets cost everybody else: the program
// set that serves user targets from the cgroup2 root (EGRESS_TARGET_BY_UID,
// UserHooks) is attached to the measured cgroup instead of a target's set,
// with a user target for another uid in user_targets; the worker's uid is
// in no user target, so every hook looks its uid up, misses and lets it
// through. A cgroup's programs run from one effective array that holds its
// own and every ancestor's, so this is the cost the root attachment puts on
// every process of the host, measured without touching the host's other
// processes. users+skb adds the per-packet hook, to show what attaching it
// at the root would cost (egressd does not).
//
// --mode=names measures name rules (bench_dns.h): the connect is allowed
// only by a name rule, through the address a lookup of the name bound
// (100,000 address rules beside it), and --bpf_stats times the packet hooks
// on a DNS query and answer against a non-DNS datagram of the same size,
// with the target enforcing (binding) and auditing (reporting the answer).
// The empty hooks' floor is measured for its connect only.
//
// --mode=audit measures what an audit target's packets pay for the UDP
// connects it holds (bpf/lib/udp_connect.h): connected send and unconnected
// sendto, each with the target enforcing and auditing (logging as egressd
// sets it in audit mode: allowed decisions recorded too), beside the empty
// hooks' floor; --bpf_stats gives skb_egress's time per run in each.
#include <bpf/bpf.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "bench/bench_dns.h"
#include "bench/bench_ops.h"
#include "bench/bench_rules.h"
#include "bench/bench_util.h"
#include "bench/empty_hooks.h"
#include "bench/nft_alternative.h"
#include "egress/abi.h"
#include "tests/testing/file_util.h"
#include "tests/testing/listeners.h"
#include "tests/testing/run_in_cgroup.h"
#include "userspace/common/errno_status.h"
#include "userspace/common/fs.h"
#include "userspace/common/mountinfo.h"
#include "userspace/common/status_macros.h"
#include "userspace/common/unique_fd.h"
#include "userspace/kernel/bpffs.h"
#include "userspace/kernel/cgroup.h"
#include "userspace/kernel/event_reader.h"
#include "userspace/kernel/shared_maps.h"
#include "userspace/kernel/target_programs.h"
#include "userspace/policy/compile.h"

namespace egress::bench {
namespace {

constexpr uint32_t kTargetId = 1;
constexpr char kBpffsMount[] = "/sys/fs/bpf";

struct Options {
  // Baseline/enforced pairs per operation and rule count.
  int rounds = 25;
  std::vector<size_t> rule_counts = {1, 1000, 100000};
  double time_scale = 1.0;
  bool verbose = false;  // print every pair
  // target: a cgroup target's set; users / users+skb: the root set of user
  // targets, for a process of another user (see the top of this file).
  std::string mode = "target";
  bool rules_given = false;
  // Kernel BPF run-time statistics while measuring: time per run of each
  // program of the set, and per operation (see bench/README.md).
  bool bpf_stats = false;
  // The nftables alternatives measured in the same run (target mode):
  // --nft=set,linear (default), --nft=none. A linear list longer than
  // nft_linear_max rules is not measured (each packet walks every rule).
  std::vector<NftShape> nft = {NftShape::kSet, NftShape::kLinear};
  bool nft_given = false;
  size_t nft_linear_max = 1000;
  // The floor of the hooks (empty_hooks.h), measured in the same run
  // (target mode, and the connect of names mode): --empty_hooks=on (default) or
  // off.
  bool empty_hooks = true;
  // --ops=a,b: measure only the operations whose name contains one of
  // these (e.g. `udp recv`); empty: all of them.
  std::vector<std::string> ops;
};

// True when --ops names `op` (or names nothing).
bool OpWanted(const Options& o, Op op) {
  if (o.ops.empty()) return true;
  for (const std::string& part : o.ops) {
    if (absl::StrContains(OpName(op), part)) return true;
  }
  return false;
}

bool UsersMode(const Options& o) {
  return o.mode == "users" || o.mode == "users+skb";
}
bool NamesMode(const Options& o) { return o.mode == "names"; }
bool AuditMode(const Options& o) { return o.mode == "audit"; }

// The hooks --mode=users+skb attaches: UserHooks() and the packet hook.
std::vector<HookSpec> UserHooksWithSkb() {
  std::vector<HookSpec> out = UserHooks();
  for (const HookSpec& h : AllHooks()) {
    if (h.attach_type == BPF_CGROUP_INET_EGRESS) out.push_back(h);
  }
  return out;
}

// A uid in no real account, for the user target that other processes pay
// for; the worker runs as root, which no user target names.
constexpr uint32_t kBenchUid = 4123456789u;

absl::StatusOr<Options> ParseArgs(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    absl::string_view arg = argv[i];
    if (absl::ConsumePrefix(&arg, "--rounds=")) {
      if (!absl::SimpleAtoi(arg, &o.rounds) || o.rounds < 1 || o.rounds > 50) {
        return absl::InvalidArgumentError("--rounds wants 1..50");
      }
    } else if (absl::ConsumePrefix(&arg, "--rules=")) {
      o.rule_counts.clear();
      for (absl::string_view n : absl::StrSplit(arg, ',')) {
        size_t v;
        if (!absl::SimpleAtoi(n, &v) || v < 1 || v > 500000) {
          return absl::InvalidArgumentError(
              "--rules wants a list of counts in 1..500000");
        }
        o.rule_counts.push_back(v);
      }
      o.rules_given = true;
    } else if (absl::ConsumePrefix(&arg, "--mode=")) {
      if (arg != "target" && arg != "users" && arg != "users+skb" &&
          arg != "names" && arg != "audit") {
        return absl::InvalidArgumentError(
            "--mode wants target, users, users+skb, names or audit");
      }
      o.mode = std::string(arg);
    } else if (arg == "--verbose") {
      o.verbose = true;
    } else if (arg == "--bpf_stats") {
      o.bpf_stats = true;
    } else if (absl::ConsumePrefix(&arg, "--nft=")) {
      o.nft.clear();
      o.nft_given = true;
      for (absl::string_view shape : absl::StrSplit(arg, ',')) {
        if (shape == "set") {
          o.nft.push_back(NftShape::kSet);
        } else if (shape == "linear") {
          o.nft.push_back(NftShape::kLinear);
        } else if (shape != "none") {
          return absl::InvalidArgumentError(
              "--nft wants a list of set and linear, or none");
        }
      }
    } else if (absl::ConsumePrefix(&arg, "--nft_linear_max=")) {
      if (!absl::SimpleAtoi(arg, &o.nft_linear_max)) {
        return absl::InvalidArgumentError("--nft_linear_max wants a count");
      }
    } else if (absl::ConsumePrefix(&arg, "--empty_hooks=")) {
      if (arg != "on" && arg != "off") {
        return absl::InvalidArgumentError("--empty_hooks wants on or off");
      }
      o.empty_hooks = arg == "on";
    } else if (absl::ConsumePrefix(&arg, "--ops=")) {
      o.ops = absl::StrSplit(arg, ',', absl::SkipEmpty());
    } else if (absl::ConsumePrefix(&arg, "--time_scale=")) {
      if (!absl::SimpleAtod(arg, &o.time_scale) || o.time_scale <= 0 ||
          o.time_scale > 10) {
        return absl::InvalidArgumentError("--time_scale wants (0, 10]");
      }
    } else {
      return absl::InvalidArgumentError(absl::StrCat(
          "unknown argument '", arg,
          "'; usage: egress_bench [--rounds=N] [--rules=1,1000,100000] "
          "[--time_scale=X] [--verbose] "
          "[--mode=target|users|users+skb|names|audit] "
          "[--bpf_stats] [--nft=set,linear|none] [--nft_linear_max=N] "
          "[--empty_hooks=on|off] [--ops=name,...]"));
    }
  }
  // The uid lookup misses whatever the rules: one rule count is enough.
  if (UsersMode(o) && !o.rules_given) o.rule_counts = {1};
  // names: the aim is stated at 100,000 rules; the per-answer time needs
  // the kernel's statistics.
  if (NamesMode(o) && !o.rules_given) o.rule_counts = {100000};
  if (NamesMode(o)) o.bpf_stats = true;
  // audit: what the hold adds does not depend on the rules (it comes after
  // them, per packet).
  if (AuditMode(o) && !o.rules_given) o.rule_counts = {1};
  // The alternatives are to a cgroup target's rules; users, names and
  // audit have no nftables counterpart.
  if (UsersMode(o) || NamesMode(o) || AuditMode(o)) {
    if (o.nft_given && !o.nft.empty()) {
      return absl::InvalidArgumentError(
          "--nft is for --mode=target: nftables has no user or name rules "
          "and no audit mode to compare with");
    }
    o.nft.clear();
    // The rows of users mode are their own comparisons. Names mode keeps
    // the floor of its connect: its aim (within 5%) is held against it.
    if (UsersMode(o)) o.empty_hooks = false;
  }
  return o;
}

// ---- cgroups -------------------------------------------------------------

// ---- measurement ---------------------------------------------------------

struct Series {
  std::vector<Sample> baseline, enforced;
};

// How the target is set for one measured run of an op. kDefault: as
// compiled (logging `denied`: verdict records for refusals, flow records
// for every connection, both under the rate limit). kRecordsOff: logging
// `off` (EGRESS_TF_EVENT_NONE: counters only). kRecordsAll: logging `all`
// (EGRESS_TF_EVENT_ALLOW: a verdict record for every allowed call too).
// kAudit: --mode=names, auditing without name rules (BPF time only);
// --mode=audit, auditing with logging as egressd sets it in audit mode
// (EGRESS_TF_EVENT_ALLOW: allowed decisions recorded too, as learning
// needs), a row of its own.
// kNftSet, kNftLinear: not egress at all but the same rules as nftables
// (nft_alternative.h) on the measured cgroup's own copy, `-nft`.
// kEmptyHooks: not egress either but a program that returns at once at
// every hook egress attaches (empty_hooks.h), on a cgroup of its own,
// `-empty`: the floor no program at those hooks can go below. Measured
// once, with the first rule count (it has no rules).
enum class Variant {
  kDefault,
  kRecordsOff,
  kRecordsAll,
  kAudit,
  kNftSet,
  kNftLinear,
  kEmptyHooks
};

Variant NftVariant(NftShape shape) {
  return shape == NftShape::kSet ? Variant::kNftSet : Variant::kNftLinear;
}

const char* VariantLabel(Variant v) {
  switch (v) {
    case Variant::kRecordsOff:
      return ", rec off";
    case Variant::kRecordsAll:
      return ", rec all";
    case Variant::kAudit:
      return " audit";
    case Variant::kNftSet:
      return ", nft set";
    case Variant::kNftLinear:
      return ", nft linear";
    case Variant::kEmptyHooks:
      return ", empty hooks";
    case Variant::kDefault:
      break;
  }
  return "";
}

// The ops measured again with records off and all (--records): the flow
// records of a TCP connection and the verdict record of a refusal.
inline constexpr Op kRecordOps[] = {Op::kTcpConnect, Op::kDeniedConnect,
                                    Op::kDeniedNewDest};

// --mode=audit: the datagrams of a UDP socket, connected (the hold's case:
// the connect's record waits for the first one) and not (sendto: no hold,
// but skb_egress looks at the socket's storage all the same).
inline constexpr Op kAuditOps[] = {Op::kUdpSendConnected, Op::kUdpSendto};

// The operations of the mode's table.
absl::Span<const Op> ModeOps(const Options& o) {
  if (NamesMode(o)) return absl::MakeConstSpan(kNameOps);
  if (AuditMode(o)) return absl::MakeConstSpan(kAuditOps);
  return absl::MakeConstSpan(kAllOps);
}

struct RulesetInfo {
  size_t rules = 0;
  size_t port_entries = 0, allow_entries = 0, deny_entries = 0,
         exact_entries = 0;
  absl::Duration compile_time, write_time;
  egress_counters counters{};
};

// run_time_ns and run_cnt of one program (they advance only while the
// kernel's BPF statistics are enabled).
struct ProgRun {
  uint64_t ns = 0, runs = 0;
};
ProgRun ProgRunOf(int fd) {
  bpf_prog_info info{};
  uint32_t len = sizeof(info);
  if (bpf_obj_get_info_by_fd(fd, &info, &len) != 0) return {};
  return {info.run_time_ns, info.run_cnt};
}

// All slices of one operation at one rule count, from one worker that moves
// itself between the cgroups (bench_ops.h: RunInterleaved). `refuses`: the
// denied connect gets EPERM in `enforced_cg`.
absl::StatusOr<Slices> Measure(Op op, const std::string& baseline_cg,
                               const std::string& enforced_cg,
                               const Endpoints& ep, const Options& opts,
                               bool refuses) {
  absl::Duration timeout =
      2 * opts.rounds *
          (LimitsOf(op, opts.time_scale).max_time + absl::Seconds(1)) +
      absl::Seconds(30);
  EGRESS_ASSIGN_OR_RETURN(
      std::vector<int> values,
      testing::RunInCgroupMulti(
          baseline_cg,
          [op, ep, baseline_cg, enforced_cg, &opts, refuses] {
            return RunInterleaved(op, ep, baseline_cg, enforced_cg, opts.rounds,
                                  opts.time_scale, refuses);
          },
          timeout));
  return DecodeSlices(values);
}

// A slice that did no operation at all means the setup is wrong (a refusal
// where a pass was expected): no number of the row could be trusted.
absl::Status EverySliceWorked(Op op, const Slices& slices,
                              const char* measured) {
  for (const auto* side : {&slices.baseline, &slices.enforced}) {
    for (const Sample& s : *side) {
      if (s.ops == 0) {
        return absl::InternalError(absl::StrFormat(
            "%s (%s) did no work: first errno %d (%s)", OpName(op),
            side == &slices.enforced ? measured : "baseline", s.first_errno,
            strerror(s.first_errno)));
      }
    }
  }
  return absl::OkStatus();
}

// One probe of each kind from each cgroup: the rules must allow our loopback
// destinations and refuse the closed port, or every number would be wrong.
// In users mode nothing is refused: the worker is no user target's.
absl::Status SanityCheck(const std::string& enforced_cg,
                         const std::string& baseline_cg, const Endpoints& ep,
                         bool users, bool names) {
  std::vector<Op> ops(std::begin(kAllOps), std::end(kAllOps));
  if (names) ops.insert(ops.end(), {Op::kDnsLookup, Op::kUdpEcho});
  for (Op op : ops) {
    for (bool enforced : {true, false}) {
      int want = 0;
      if (op == Op::kDeniedConnect || op == Op::kDeniedNewDest) {
        want = enforced && !users ? EPERM : ECONNREFUSED;
      }
      EGRESS_ASSIGN_OR_RETURN(
          int got,
          testing::RunInCgroup(enforced ? enforced_cg : baseline_cg,
                               [op, ep] { return ProbeOnce(op, ep); }));
      if (got != want) {
        return absl::InternalError(absl::StrFormat(
            "sanity check: %s from the %s cgroup gave '%s', want '%s'",
            OpName(op), enforced ? "enforced" : "baseline",
            got == 0 ? "success" : strerror(got),
            want == 0 ? "success" : strerror(want)));
      }
    }
  }
  return absl::OkStatus();
}

// What a probe of `op` gives with nothing deciding it: success, or the
// kernel's reset for the closed port.
int UnenforcedOutcome(Op op) {
  return op == Op::kDeniedConnect || op == Op::kDeniedNewDest ? ECONNREFUSED
                                                              : 0;
}

// One probe of every op from `cg`: an error naming `where` for the first
// that gives other than want(op).
absl::Status ProbesGive(const std::string& cg, const Endpoints& ep,
                        const std::string& where,
                        absl::FunctionRef<int(Op)> want_of) {
  for (Op op : kAllOps) {
    EGRESS_ASSIGN_OR_RETURN(int got, testing::RunInCgroup(cg, [op, ep] {
                              return ProbeOnce(op, ep);
                            }));
    const int want = want_of(op);
    if (got != want) {
      return absl::InternalError(absl::StrFormat(
          "sanity check: %s under %s gave '%s', want '%s'", OpName(op), where,
          got == 0 ? "success" : strerror(got),
          want == 0 ? "success" : strerror(want)));
    }
  }
  return absl::OkStatus();
}

// The nftables side: every allowed probe passes from `nft_cg`, and a
// listener no rule allows is refused there (a reset: ECONNREFUSED) while the
// baseline reaches it, so the table really judges the cgroup's packets. A
// server's reply to a peer no rule names passes only with the conntrack
// accept (`replies`), and is refused (EPERM) without it.
absl::Status NftSanityCheck(const std::string& nft_cg,
                            const std::string& baseline_cg, const Endpoints& ep,
                            const char* shape, NftReplies replies) {
  EGRESS_RETURN_IF_ERROR(
      ProbesGive(nft_cg, ep, absl::StrCat("nft ", shape), [replies](Op op) {
        return RepliesToPeers(op) && replies == NftReplies::kStateless
                   ? EPERM
                   : UnenforcedOutcome(op);
      }));
  EGRESS_ASSIGN_OR_RETURN(std::unique_ptr<testing::TcpListener> other,
                          testing::TcpListener::Create("127.0.0.1"));
  Endpoints unlisted = ep;
  unlisted.tcp_connect = other->port();
  for (bool nft : {true, false}) {
    EGRESS_ASSIGN_OR_RETURN(
        int got, testing::RunInCgroup(nft ? nft_cg : baseline_cg, [unlisted] {
          return ProbeOnce(Op::kTcpConnect, unlisted);
        }));
    const int want = nft ? ECONNREFUSED : 0;
    if (got != want) {
      return absl::InternalError(absl::StrFormat(
          "sanity check: a connect to a port no rule allows from the %s "
          "cgroup gave '%s', want '%s'",
          nft ? absl::StrCat("nft ", shape) : "baseline",
          got == 0 ? "success" : strerror(got),
          want == 0 ? "success" : strerror(want)));
    }
  }
  return absl::OkStatus();
}

// The `udp reply` rows under nft: the conntrack accept tracks every flow of
// the network namespace, two per peer (one to each side's server socket),
// and UDP entries live 30 s, or 120 s once replied. A table of the run's
// own gives the peers' entries (source kPeerNetwork: only the benchmark's
// senders) a timeout of 5 s, ample for a datagram queued and answered in
// one slice, so that a 100,000-peer row does not leave the next one a full
// conntrack table (which would drop the peers' datagrams). It runs on the
// output hook for the baseline and the nft slices alike; the measured
// replies come from 127.0.0.1 and only pass its address compare.
std::string PeerTimeoutScript(const std::string& table) {
  return absl::StrCat(
      "table inet ", table,
      " {\n"
      "  ct timeout peers {\n"
      "    protocol udp; l3proto ip;\n"
      "    policy = { unreplied: 5, replied: 5 }\n"
      "  }\n"
      "  chain out {\n"
      "    type filter hook output priority filter; policy accept;\n"
      "    ip saddr ",
      kPeerNetwork,
      " meta l4proto udp ct state new ct timeout set \"peers\"\n"
      "  }\n"
      "}\n");
}

// Waits (up to 60 s) until conntrack has room for the entries of `op`'s
// peers on both sides and some to spare; false (with a note printed) when
// it never had: the row is then not measured.
absl::StatusOr<bool> WaitForConntrackRoom(Op op) {
  constexpr char kMax[] = "/proc/sys/net/netfilter/nf_conntrack_max";
  constexpr char kCount[] = "/proc/sys/net/netfilter/nf_conntrack_count";
  auto read_number = [](const char* path) -> absl::StatusOr<int64_t> {
    EGRESS_ASSIGN_OR_RETURN(std::string text, testing::ReadFile(path));
    int64_t v = 0;
    if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(text), &v)) {
      return absl::InternalError(absl::StrCat(path, ": not a number"));
    }
    return v;
  };
  EGRESS_ASSIGN_OR_RETURN(int64_t max, read_number(kMax));
  const int64_t need = 2 * int64_t{PeersOf(op)} + 10000;
  const absl::Time deadline = absl::Now() + absl::Seconds(60);
  int64_t count = 0;
  while (true) {
    EGRESS_ASSIGN_OR_RETURN(count, read_number(kCount));
    if (count + need <= max) return true;
    if (absl::Now() >= deadline || StopRequested()) break;
    absl::SleepFor(absl::Milliseconds(200));
  }
  std::printf(
      "  %s under nft: not measured, conntrack holds %lld of %lld entries "
      "and the row needs %lld\n",
      OpName(op), static_cast<long long>(count), static_cast<long long>(max),
      static_cast<long long>(need));
  return false;
}

// The empty hooks' side: every probe gives what it gives with nothing
// attached (allowed ops pass, the closed port refuses with a reset).
absl::Status EmptyHooksSanityCheck(const std::string& empty_cg,
                                   const Endpoints& ep) {
  return ProbesGive(empty_cg, ep, "the empty hooks", UnenforcedOutcome);
}

// names: a lookup of the name from the enforced cgroup binds 127.0.0.1 to
// the name rule; the connect must be refused before it (`expect_refused`:
// nothing bound yet) and allowed after.
absl::Status LearnName(const std::string& enforced_cg, const Endpoints& ep,
                       bool expect_refused) {
  auto probe = [&](Op op) {
    return testing::RunInCgroup(enforced_cg,
                                [op, ep] { return ProbeOnce(op, ep); });
  };
  EGRESS_ASSIGN_OR_RETURN(int before, probe(Op::kTcpConnect));
  if (expect_refused && before != EPERM) {
    return absl::InternalError(absl::StrFormat(
        "sanity check: the connect before any lookup gave '%s', want EPERM "
        "(it must pass by the name rule only)",
        before == 0 ? "success" : strerror(before)));
  }
  EGRESS_ASSIGN_OR_RETURN(int lookup, probe(Op::kDnsLookup));
  if (lookup != 0) {
    return absl::InternalError(
        absl::StrFormat("sanity check: the lookup of %s gave '%s'", kBenchName,
                        strerror(lookup)));
  }
  return absl::OkStatus();
}

// How much the unenforced operation alone varied between slices: the
// interquartile range of the baseline rates over their median. The same
// operation with nothing attached should run at one speed; when it does not,
// the machine (other load, frequency, steal) moves the numbers by more than
// the aims they are held to, and every ratio of the row is suspect.
double BaselineSpread(const std::vector<double>& rates) {
  const double median = Median(rates);
  if (median <= 0) return 0;
  return (Quantile(rates, 0.75) - Quantile(rates, 0.25)) / median;
}
// A row is noisy when its baseline spread exceeds this: wider than the
// 3-5% aims, a ratio measured on it cannot tell a pass from a fail.
constexpr double kNoisyBaseline = 0.05;

absl::Status Run(const Options& opts) {
  if (geteuid() != 0) {
    return absl::PermissionDeniedError(
        "egress_bench loads BPF programs and creates cgroups: run it as root "
        "(sudo build/bench/egress_bench)");
  }
  const pid_t pid = getpid();

  // Pins: <bpffs>/egress-bench-<pid>/{maps,targets/1}.
  const std::string pin_root = absl::StrCat(kBpffsMount, "/egress-bench-", pid);
  const std::string maps_dir = absl::StrCat(pin_root, "/maps");
  // users mode: the root set of user targets (id EGRESS_TARGET_BY_UID).
  const uint32_t set_id =
      UsersMode(opts) ? static_cast<uint32_t>(EGRESS_TARGET_BY_UID) : kTargetId;
  const std::vector<HookSpec> hooks =
      opts.mode == "users+skb" ? UserHooksWithSkb() : HooksOf(set_id);
  const std::string prog_dir = absl::StrCat(pin_root, "/targets/", set_id);
  EGRESS_RETURN_IF_ERROR(EnsureBpffsDir(pin_root, kBpffsMount));
  absl::Cleanup remove_pins = [&pin_root] {
    if (absl::Status s = RemoveTree(pin_root); !s.ok()) {
      std::fprintf(stderr, "cleanup: %s\n", s.ToString().c_str());
    }
  };
  EGRESS_RETURN_IF_ERROR(EnsureBpffsDir(maps_dir, kBpffsMount));
  EGRESS_ASSIGN_OR_RETURN(std::unique_ptr<SharedMaps> maps,
                          SharedMaps::OpenOrCreate(maps_dir));
  EGRESS_RETURN_IF_ERROR(
      LoadAndPinPrograms(set_id, maps_dir, prog_dir, &hooks));
  if (UsersMode(opts)) {
    // A user target for another uid: the map the root set reads is not
    // empty, as on a host with one user target.
    EGRESS_RETURN_IF_ERROR(maps->SetUserTarget(kBenchUid, kTargetId));
  }

  // Two sibling cgroups directly under the cgroup2 root.
  EGRESS_ASSIGN_OR_RETURN(std::string cg_root, Cgroup2Root());
  const std::string cg_prefix =
      absl::StrCat(cg_root == "/" ? "" : cg_root, "/egress-bench-", pid);
  const std::string enforced_cg = absl::StrCat(cg_prefix, "-enforced");
  const std::string baseline_cg = absl::StrCat(cg_prefix, "-baseline");
  // The nftables alternatives' cgroup: no programs, matched by the table.
  const std::string nft_cg = absl::StrCat(cg_prefix, "-nft");
  // The empty hooks' cgroup (empty_hooks.h).
  const std::string empty_cg = absl::StrCat(cg_prefix, "-empty");
  std::vector<std::string> cgroups = {enforced_cg, baseline_cg};
  if (!opts.nft.empty()) cgroups.push_back(nft_cg);
  if (opts.empty_hooks) cgroups.push_back(empty_cg);
  absl::Cleanup remove_cgroups = [&] {
    for (const std::string& dir : cgroups) {
      if (absl::Status s = RemoveCgroup(dir); !s.ok()) {
        std::fprintf(stderr, "cleanup: %s\n", s.ToString().c_str());
      }
    }
  };
  for (const std::string& dir : cgroups) {
    if (mkdir(dir.c_str(), 0755) != 0) return ErrnoStatus(errno, "mkdir", dir);
  }
  std::string nft_cgroup_path;
  if (!opts.nft.empty()) {
    EGRESS_ASSIGN_OR_RETURN(nft_cgroup_path, NftCgroupPath(nft_cg));
  }

  // Attach; detach first on the way out (cleanups run in reverse order).
  absl::Cleanup detach = [&prog_dir] {
    if (absl::Status s = DetachAndRemove(prog_dir); !s.ok()) {
      std::fprintf(stderr, "cleanup: %s\n", s.ToString().c_str());
    }
  };
  {
    EGRESS_ASSIGN_OR_RETURN(UniqueFd cg_fd, OpenCgroup(enforced_cg));
    EGRESS_ASSIGN_OR_RETURN(uint64_t cg_id, CgroupId(enforced_cg));
    EGRESS_RETURN_IF_ERROR(
        AttachPinned(prog_dir, cg_fd.get(), cg_id, nullptr, hooks));
  }
  // Declared after the cgroups: detached before they are removed.
  std::unique_ptr<EmptyHooks> empty_hooks;
  if (opts.empty_hooks) {
    EGRESS_ASSIGN_OR_RETURN(empty_hooks, EmptyHooks::Attach(empty_cg, hooks));
  }

  // Drain verdict records the way egressd does (the programs submit them
  // without wake-ups), so that the denied path pays for a real record.
  std::atomic<uint64_t> events{0};
  EGRESS_ASSIGN_OR_RETURN(
      std::unique_ptr<EventReader> reader,
      EventReader::Create(maps->events_fd(), [&events](const egress_event&) {
        events.fetch_add(1, std::memory_order_relaxed);
      }));
  std::atomic<bool> drain_stop{false};
  std::thread drainer([&] {
    while (!drain_stop.load()) {
      (void)reader->Drain();
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    (void)reader->Drain();
  });
  absl::Cleanup stop_drainer = [&] {
    drain_stop = true;
    drainer.join();
  };

  EGRESS_ASSIGN_OR_RETURN(std::unique_ptr<LoopbackServers> servers,
                          LoopbackServers::Start());
  Endpoints ep = servers->endpoints();
  std::unique_ptr<DnsResponder> responder;
  if (NamesMode(opts)) {
    EGRESS_ASSIGN_OR_RETURN(responder, DnsResponder::Start());
    ep.dns = 53;
    ep.udp_echo = responder->echo_port();
    std::printf("names: %s answered on udp 127.0.0.1:53, echo on udp %u\n",
                kBenchName, ep.udp_echo);
  }
  std::printf(
      "egress_bench: pid %d, %d round(s), pins %s, cgroups %s-{enforced,"
      "baseline}\nloopback 127.0.0.1: tcp %u (connect), tcp %u (bulk), udp %u "
      "(sink), tcp %u (closed, not allowed)\n\n",
      pid, opts.rounds, pin_root.c_str(), cg_prefix.c_str(), ep.tcp_connect,
      ep.tcp_bulk, ep.udp_sink, ep.closed);
  std::fflush(stdout);

  // --bpf_stats: the kernel times every program run while this fd is open.
  UniqueFd stats_fd;
  std::vector<std::pair<std::string, UniqueFd>> progs;
  if (opts.bpf_stats) {
    stats_fd = UniqueFd(bpf_enable_stats(BPF_STATS_RUN_TIME));
    if (!stats_fd) return ErrnoStatus(errno, "bpf_enable_stats", "run time");
    for (const HookSpec& h : hooks) {
      progs.emplace_back(h.name,
                         UniqueFd(bpf_obj_get(ProgPin(prog_dir, h).c_str())));
    }
  }
  std::vector<std::string> stats_lines;
  // The `udp reply` rows' counter cross-checks, and those that failed.
  std::vector<std::string> reply_checks, reply_mismatches;

  std::vector<RulesetInfo> infos;
  // (rule count index, op, variant)
  std::map<std::tuple<size_t, Op, Variant>, Series> results;
  // --bpf_stats: ns per run of each program, by (rule count index, op,
  // variant).
  std::map<std::tuple<size_t, Op, Variant>, std::map<std::string, double>>
      prog_ns;
  std::optional<policy::CompiledRuleset> previous;
  const AllowedPorts allowed = {ep.tcp_connect, ep.tcp_bulk, ep.udp_sink};

  for (size_t ni = 0; ni < opts.rule_counts.size(); ++ni) {
    const size_t n = opts.rule_counts[ni];
    const uint32_t ruleset = static_cast<uint32_t>(ni + 1);
    RulesetInfo info;
    info.rules = n;

    std::vector<policy::Rule> rules =
        NamesMode(opts) ? MakeNameRules(n, allowed, ep.udp_echo, kBenchName)
                        : MakeRules(n, allowed);
    absl::Time t0 = absl::Now();
    EGRESS_ASSIGN_OR_RETURN(policy::CompiledRuleset compiled,
                            policy::Compile(ruleset, rules));
    absl::Time t1 = absl::Now();
    if (absl::Status s = maps->WriteEntries(compiled); !s.ok()) {
      (void)maps->DeleteEntries(compiled);
      return s;
    }
    info.compile_time = t1 - t0;
    info.write_time = absl::Now() - t1;
    egress_target_config config{};
    config.ruleset = ruleset;
    config.mode = EGRESS_MODE_ENFORCE;
    config.flags = compiled.flags;
    const uint8_t compiled_flags = compiled.flags;
    EGRESS_RETURN_IF_ERROR(maps->SetTargetConfig(kTargetId, config));
    if (previous.has_value()) {
      EGRESS_RETURN_IF_ERROR(maps->DeleteEntries(*previous));
    }
    for (const auto& [key, value] : compiled.rules) {
      ++(value.verdict == EGRESS_VERDICT_ALLOW ? info.allow_entries
                                               : info.deny_entries);
    }
    info.exact_entries = compiled.exact.size();
    previous = std::move(compiled);
    EGRESS_ASSIGN_OR_RETURN(info.port_entries,
                            maps->CountEntries("port_classes"));
    EGRESS_ASSIGN_OR_RETURN(size_t in_map, maps->CountEntries("rules"));
    if (in_map != info.allow_entries + info.deny_entries) {
      return absl::InternalError(
          absl::StrCat("rules map holds ", in_map, " entries, compiled ",
                       info.allow_entries + info.deny_entries));
    }
    EGRESS_ASSIGN_OR_RETURN(size_t in_exact, maps->CountEntries("exact_rules"));
    if (in_exact != info.exact_entries) {
      return absl::InternalError(absl::StrCat("exact_rules holds ", in_exact,
                                              " entries, compiled ",
                                              info.exact_entries));
    }
    std::printf(
        "rules %s: compiled in %s, written in %s: port_classes %s, "
        "rules %s allow + %s deny entries, exact_rules %s\n",
        WithCommas(n).c_str(), absl::FormatDuration(info.compile_time).c_str(),
        absl::FormatDuration(info.write_time).c_str(),
        WithCommas(info.port_entries).c_str(),
        WithCommas(info.allow_entries).c_str(),
        WithCommas(info.deny_entries).c_str(),
        WithCommas(info.exact_entries).c_str());
    std::fflush(stdout);

    if (NamesMode(opts)) {
      // The connect passes only by the name: refused before a lookup (unless
      // an earlier rule count's binding is still live), allowed after.
      EGRESS_RETURN_IF_ERROR(LearnName(enforced_cg, ep, ni == 0));
    }
    EGRESS_RETURN_IF_ERROR(SanityCheck(enforced_cg, baseline_cg, ep,
                                       UsersMode(opts), NamesMode(opts)));
    EGRESS_RETURN_IF_ERROR(maps->ResetCounters(kTargetId));

    // names: the DNS ops again with the target auditing without name rules
    // (audit learning: the answer is reported, nothing is bound), for the
    // BPF time only. target mode: the record ops again at logging off and
    // all, right after their default rows.
    std::vector<std::pair<Op, Variant>> runs;
    if (AuditMode(opts)) {
      // Each op enforcing, then auditing, one after the other.
      for (Op op : kAuditOps) {
        if (!OpWanted(opts, op)) continue;
        runs.push_back({op, Variant::kDefault});
        runs.push_back({op, Variant::kAudit});
      }
    } else if (NamesMode(opts)) {
      for (Op op : kNameOps) runs.push_back({op, Variant::kDefault});
      runs.push_back({Op::kDnsLookup, Variant::kAudit});
      runs.push_back({Op::kUdpEcho, Variant::kAudit});
    } else {
      for (Op op : kAllOps) {
        if (!OpWanted(opts, op)) continue;
        runs.push_back({op, Variant::kDefault});
        if (UsersMode(opts) ||
            std::find(std::begin(kRecordOps), std::end(kRecordOps), op) ==
                std::end(kRecordOps)) {
          continue;
        }
        runs.push_back({op, Variant::kRecordsOff});
        runs.push_back({op, Variant::kRecordsAll});
      }
    }
    for (const auto& [op, variant] : runs) {
      if (StopRequested()) return absl::CancelledError("interrupted");
      const bool audit = variant == Variant::kAudit;
      {
        egress_target_config want = config;
        want.mode = audit ? EGRESS_MODE_AUDIT : EGRESS_MODE_ENFORCE;
        want.flags = compiled_flags;
        if (audit) want.flags &= static_cast<uint8_t>(~EGRESS_TF_NAME_RULES);
        // As egressd sets logging `denied` in audit mode (LoggingFlags).
        if (audit && AuditMode(opts)) want.flags |= EGRESS_TF_EVENT_ALLOW;
        if (variant == Variant::kRecordsOff) want.flags |= EGRESS_TF_EVENT_NONE;
        if (variant == Variant::kRecordsAll) {
          want.flags |= EGRESS_TF_EVENT_ALLOW;
        }
        if (want.mode != config.mode || want.flags != config.flags) {
          config = want;
          EGRESS_RETURN_IF_ERROR(maps->SetTargetConfig(kTargetId, config));
        }
      }
      std::vector<ProgRun> before;
      for (const auto& [name, fd] : progs)
        before.push_back(ProgRunOf(fd.get()));
      // The replies must each pass as a known peer's (no rule names the
      // peers): the target's `replies` counter grows by their number.
      const bool check_replies = RepliesToPeers(op) && !UsersMode(opts);
      egress_counters counted_before{};
      if (check_replies) {
        EGRESS_ASSIGN_OR_RETURN(counted_before, maps->Counters(kTargetId));
      }
      EGRESS_ASSIGN_OR_RETURN(Slices slices,
                              Measure(op, baseline_cg, enforced_cg, ep, opts,
                                      /*refuses=*/!UsersMode(opts)));
      if (check_replies) {
        EGRESS_ASSIGN_OR_RETURN(egress_counters after,
                                maps->Counters(kTargetId));
        // Every enforced op that did not fail sent one reply; nothing else
        // on the enforced side sends (the peers' sockets are the
        // baseline's, and warm-up only reads).
        int64_t sent = 0;
        for (const Sample& s : slices.enforced) sent += s.ops - s.unexpected;
        const uint64_t replies = after.replies - counted_before.replies;
        const uint64_t allowed = after.allowed - counted_before.allowed;
        const uint64_t denied = after.denied - counted_before.denied;
        const bool ok = replies == static_cast<uint64_t>(sent) &&
                        allowed == 0 && denied == 0;
        const std::string line = absl::StrFormat(
            "%s at %s rules: replies counter +%s for %s replies sent "
            "(allowed +%s, denied +%s): %s",
            OpName(op), WithCommas(n), WithCommas(replies),
            WithCommas(static_cast<uint64_t>(sent)), WithCommas(allowed),
            WithCommas(denied), ok ? "ok" : "MISMATCH");
        reply_checks.push_back(line);
        if (!ok) reply_mismatches.push_back(line);
      }
      if (opts.bpf_stats) {
        int64_t enforced_ops = 0;
        for (const Sample& s : slices.enforced) enforced_ops += s.ops;
        std::string line = absl::StrFormat(
            "  %-18s %9s%s", OpName(op), WithCommas(n).c_str(),
            variant != Variant::kDefault
                ? VariantLabel(variant)
                : (NamesMode(opts) || AuditMode(opts) ? " enforce" : ""));
        double per_op = 0;
        for (size_t i = 0; i < progs.size(); ++i) {
          ProgRun now = ProgRunOf(progs[i].second.get());
          uint64_t runs = now.runs - before[i].runs;
          uint64_t ns = now.ns - before[i].ns;
          if (runs == 0) continue;
          prog_ns[{ni, op, variant}][progs[i].first] =
              static_cast<double>(ns) / runs;
          absl::StrAppendFormat(
              &line, "  %s %.0f ns x %.2f", progs[i].first,
              static_cast<double>(ns) / runs,
              static_cast<double>(runs) / std::max<int64_t>(1, enforced_ops));
          per_op += static_cast<double>(ns) /
                    static_cast<double>(std::max<int64_t>(1, enforced_ops));
        }
        absl::StrAppendFormat(&line, "  => %.0f ns per op", per_op);
        stats_lines.push_back(line);
      }
      if (StopRequested()) return absl::CancelledError("interrupted");
      EGRESS_RETURN_IF_ERROR(EverySliceWorked(op, slices, "enforced"));
      if (opts.verbose) {
        for (size_t p = 0;
             p < slices.baseline.size() && p < slices.enforced.size(); ++p) {
          const Sample& b = slices.baseline[p];
          const Sample& e = slices.enforced[p];
          std::printf(
              "    pair %2zu: baseline %10.0f/s (%7lld, cpu %3.0f%%)  "
              "enforced %10.0f/s (%7lld, cpu %3.0f%%)  wall %.3f  cpu %.3f\n",
              p, b.Rate(), static_cast<long long>(b.ops),
              100 * absl::FDivDuration(b.cpu, b.elapsed), e.Rate(),
              static_cast<long long>(e.ops),
              100 * absl::FDivDuration(e.cpu, e.elapsed), b.Rate() / e.Rate(),
              b.CpuRate() / e.CpuRate());
        }
      }
      // Names mode's audit runs are for their BPF time only.
      if (audit && !AuditMode(opts)) {
        std::printf("  %s (audit) done\n", OpName(op));
        continue;
      }
      results[{ni, op, variant}] =
          Series{std::move(slices.baseline), std::move(slices.enforced)};
      std::printf("  %s%s done\n", OpName(op), VariantLabel(variant));
      std::fflush(stdout);
    }
    // The same rules as nftables, each shape measured against the same
    // baseline (the worker moves between baseline and the `-nft` cgroup).
    // The reply rows get a table of their own, with the conntrack accept
    // that lets a server answer (NftReplies), so that the other rows stay
    // stateless.
    for (NftShape shape : opts.nft) {
      if (shape == NftShape::kLinear && n > opts.nft_linear_max) continue;
      for (NftReplies replies :
           {NftReplies::kStateless, NftReplies::kEstablished}) {
        const bool established = replies == NftReplies::kEstablished;
        std::vector<Op> ops;
        for (Op op : kAllOps) {
          if (OpWanted(opts, op) && RepliesToPeers(op) == established) {
            ops.push_back(op);
          }
        }
        if (ops.empty()) continue;
        if (StopRequested()) return absl::CancelledError("interrupted");
        const std::string table =
            absl::StrCat("egress_bench_", pid, "_", NftShapeName(shape),
                         established ? "_replies" : "");
        EGRESS_ASSIGN_OR_RETURN(
            std::string script,
            NftScript(table, nft_cgroup_path, 1, shape, rules, replies));
        absl::Time load_start = absl::Now();
        EGRESS_ASSIGN_OR_RETURN(std::unique_ptr<NftTable> loaded,
                                NftTable::Load(table, script));
        std::printf(
            "  nft %s of %s rules%s loaded in %s\n", NftShapeName(shape),
            WithCommas(n).c_str(),
            established ? " after ct state established,related accept" : "",
            absl::FormatDuration(
                absl::Trunc(absl::Now() - load_start, absl::Milliseconds(1)))
                .c_str());
        std::unique_ptr<NftTable> peer_timeouts;
        if (established) {
          const std::string name = absl::StrCat("egress_bench_", pid, "_peers");
          EGRESS_ASSIGN_OR_RETURN(
              peer_timeouts, NftTable::Load(name, PeerTimeoutScript(name)));
        }
        EGRESS_RETURN_IF_ERROR(NftSanityCheck(nft_cg, baseline_cg, ep,
                                              NftShapeName(shape), replies));
        for (Op op : ops) {
          if (StopRequested()) return absl::CancelledError("interrupted");
          if (established) {
            EGRESS_ASSIGN_OR_RETURN(bool room, WaitForConntrackRoom(op));
            if (!room) continue;
          }
          EGRESS_ASSIGN_OR_RETURN(
              Slices slices,
              Measure(op, baseline_cg, nft_cg, ep, opts, /*refuses=*/false));
          EGRESS_RETURN_IF_ERROR(EverySliceWorked(op, slices, "nft"));
          results[{ni, op, NftVariant(shape)}] =
              Series{std::move(slices.baseline), std::move(slices.enforced)};
          std::printf("  %s%s done\n", OpName(op),
                      VariantLabel(NftVariant(shape)));
          std::fflush(stdout);
        }
      }
    }
    // The floor: the same ops with empty programs at the same hooks, against
    // the same baseline (once: it has no rules).
    if (empty_hooks != nullptr && ni == 0) {
      EGRESS_RETURN_IF_ERROR(EmptyHooksSanityCheck(empty_cg, ep));
      for (Op op : ModeOps(opts)) {
        if (StopRequested()) return absl::CancelledError("interrupted");
        if (!OpWanted(opts, op)) continue;
        // Names mode: only the connect, the one row with an aim.
        if (NamesMode(opts) && op != Op::kTcpConnect) continue;
        EGRESS_ASSIGN_OR_RETURN(
            Slices slices,
            Measure(op, baseline_cg, empty_cg, ep, opts, /*refuses=*/false));
        EGRESS_RETURN_IF_ERROR(EverySliceWorked(op, slices, "empty hooks"));
        results[{ni, op, Variant::kEmptyHooks}] =
            Series{std::move(slices.baseline), std::move(slices.enforced)};
        std::printf("  %s%s done\n", OpName(op),
                    VariantLabel(Variant::kEmptyHooks));
        std::fflush(stdout);
      }
    }
    EGRESS_ASSIGN_OR_RETURN(info.counters, maps->Counters(kTargetId));
    infos.push_back(info);
    if (config.mode != EGRESS_MODE_ENFORCE || config.flags != compiled_flags) {
      config.mode = EGRESS_MODE_ENFORCE;
      config.flags = compiled_flags;
      EGRESS_RETURN_IF_ERROR(maps->SetTargetConfig(kTargetId, config));
    }
  }

  // ---- report ----
  std::printf("\nmap entries per rule count\n");
  std::printf("%9s %14s %14s %14s %14s %12s %12s\n", "rules", "port_classes",
              "rules:allow", "rules:deny", "exact_rules", "compile", "write");
  for (const RulesetInfo& info : infos) {
    std::printf("%9s %14s %14s %14s %14s %12s %12s\n",
                WithCommas(info.rules).c_str(),
                WithCommas(info.port_entries).c_str(),
                WithCommas(info.allow_entries).c_str(),
                WithCommas(info.deny_entries).c_str(),
                WithCommas(info.exact_entries).c_str(),
                absl::FormatDuration(
                    absl::Trunc(info.compile_time, absl::Milliseconds(1)))
                    .c_str(),
                absl::FormatDuration(
                    absl::Trunc(info.write_time, absl::Milliseconds(1)))
                    .c_str());
  }

  std::printf(
      "\n%d interleaved baseline/enforced pairs per row. baseline, enforced: "
      "median rate (wall clock).\nratio = enforced time per op / baseline "
      "time per op, median of the per-pair ratios [interquartile range];\n"
      "wall = elapsed time, cpu = the worker's CPU time (not inflated by "
      "other tasks preempting it).\nRows `nft set` / `nft linear`: the "
      "enforced column is the same rules as an nftables table on another "
      "cgroup\n(bench/nft_alternative.h), against its own baseline slices. "
      "Rows "
      "`empty hooks` (rules -): a program that\nreturns at once at every hook "
      "egress attaches, on another cgroup (bench/empty_hooks.h): the hooks' "
      "own floor.\n",
      opts.rounds);
  std::printf("%-40s %9s %6s %12s %12s %7s %15s %7s %15s %6s\n", "operation",
              "rules", "unit", "baseline", "enforced", "wall", "[q1 - q3]",
              "cpu", "[q1 - q3]", "noise");
  struct Verdict {
    double wall = 0, cpu = 0;
  };
  std::optional<Verdict> connect_at_100k;
  // The denied connect to a new destination by rule count: with records
  // (default) and without (rec off).
  std::map<size_t, Verdict> new_dest_recorded, new_dest_unrecorded;
  std::optional<Verdict> first_connect;
  // Every row's ratios, for the aims below the table.
  std::map<std::tuple<size_t, Op, Variant>, Verdict> verdicts;
  std::vector<std::string> anomalies;
  const absl::Span<const Op> table_ops = ModeOps(opts);
  // Names mode's audit runs are for their BPF time only; audit mode's
  // are rows.
  std::vector<Variant> table_variants = {
      Variant::kDefault, Variant::kRecordsOff, Variant::kRecordsAll,
      Variant::kNftSet, Variant::kNftLinear};
  if (AuditMode(opts)) table_variants.push_back(Variant::kAudit);
  table_variants.push_back(Variant::kEmptyHooks);
  // Rows whose baseline spread is too wide for their aims (see
  // kNoisyBaseline), for the warning under the table.
  std::vector<std::string> noisy;
  for (Op op : table_ops) {
    for (Variant variant : table_variants) {
      for (size_t ni = 0; ni < infos.size(); ++ni) {
        auto found = results.find({ni, op, variant});
        if (found == results.end()) continue;
        const Series& s = found->second;
        std::vector<double> base, enf, wall, cpu;
        for (size_t r = 0; r < s.baseline.size() && r < s.enforced.size();
             ++r) {
          // Bulk samples count KiB: report MiB/s.
          double unit = op == Op::kTcpBulk ? 1024.0 : 1.0;
          base.push_back(s.baseline[r].Rate() / unit);
          enf.push_back(s.enforced[r].Rate() / unit);
          wall.push_back(base.back() / enf.back());
          cpu.push_back(s.baseline[r].CpuRate() / s.enforced[r].CpuRate());
        }
        for (const auto* side : {&s.baseline, &s.enforced}) {
          for (const Sample& sample : *side) {
            if (sample.unexpected > 0) {
              anomalies.push_back(absl::StrFormat(
                  "%s, %zu rules, %s: %d unexpected outcomes (first errno %d: "
                  "%s)",
                  OpName(op), infos[ni].rules,
                  side == &s.baseline ? "baseline"
                  : variant == Variant::kNftSet ||
                          variant == Variant::kNftLinear
                      ? "nft"
                  : variant == Variant::kEmptyHooks ? "empty hooks"
                                                    : "enforced",
                  sample.unexpected, sample.first_errno,
                  sample.first_errno > 0 ? strerror(sample.first_errno)
                                         : "short write"));
            }
          }
        }
        Verdict v = {Median(wall), Median(cpu)};
        verdicts[{ni, op, variant}] = v;
        const double noise = BaselineSpread(base);
        const std::string label =
            absl::StrCat(OpName(op), VariantLabel(variant));
        std::printf(
            "%-40s %9s %6s %12s %12s %7.3f %7.3f-%-7.3f %7.3f %7.3f-%-7.3f "
            "%5.1f%%%s\n",
            label.c_str(),
            variant == Variant::kEmptyHooks
                ? "-"
                : WithCommas(infos[ni].rules).c_str(),
            OpUnit(op), WithCommas(static_cast<uint64_t>(Median(base))).c_str(),
            WithCommas(static_cast<uint64_t>(Median(enf))).c_str(), v.wall,
            Quantile(wall, 0.25), Quantile(wall, 0.75), v.cpu,
            Quantile(cpu, 0.25), Quantile(cpu, 0.75), 100 * noise,
            noise > kNoisyBaseline ? " !" : "");
        if (noise > kNoisyBaseline) {
          noisy.push_back(absl::StrFormat("%s at %s rules (%.1f%%)", label,
                                          variant == Variant::kEmptyHooks
                                              ? "no"
                                              : WithCommas(infos[ni].rules),
                                          100 * noise));
        }
        if (op == Op::kDeniedNewDest && variant == Variant::kRecordsOff) {
          new_dest_unrecorded[ni] = v;
        }
        if (variant != Variant::kDefault) continue;
        if (op == Op::kDeniedNewDest) new_dest_recorded[ni] = v;
        if (op == Op::kTcpConnect && infos[ni].rules == 100000) {
          connect_at_100k = v;
        }
        if (op == Op::kTcpConnect && ni == 0) first_connect = v;
      }
    }
  }
  if (!noisy.empty()) {
    std::printf(
        "\nWARNING: the machine is too noisy to trust these ratios: the "
        "baseline alone varied by more than %.0f%% (interquartile range over "
        "median of its rates, column `noise`, marked !) in %zu of the rows, "
        "more than the aims it is held to (3-5%%). Stop other load (more "
        "--rounds steadies the medians, not this spread). Rows: %s\n",
        100 * kNoisyBaseline, noisy.size(), absl::StrJoin(noisy, "; ").c_str());
  }

  // Issue 13: a refusal with its record against the same refusal without
  // one, each as a ratio to its own baseline slices.
  for (const auto& [ni, with] : new_dest_recorded) {
    auto without = new_dest_unrecorded.find(ni);
    if (without == new_dest_unrecorded.end()) continue;
    const double wall = with.wall / without->second.wall;
    const double cpu = with.cpu / without->second.cpu;
    std::printf(
        "\nat %s rules, a denied connect to a new destination each time, with "
        "its record vs without (logging off), within 1.2: %s (wall %.3f, cpu "
        "%.3f: %s)",
        WithCommas(infos[ni].rules).c_str(), wall <= 1.2 ? "PASS" : "FAIL",
        wall, cpu, cpu <= 1.2 ? "pass" : "fail");
  }
  if (!new_dest_recorded.empty()) std::printf("\n");

  // Issue 13's aims for the kernel path, at the largest rule count, each
  // beside the empty hooks' ratio of the same op: where that floor alone is
  // above the aim, no program at these hooks can meet it on this machine.
  if (!infos.empty() && !NamesMode(opts) && !UsersMode(opts) &&
      !AuditMode(opts)) {
    struct Aim {
      Op op;
      double at_most;
    };
    constexpr Aim kAims[] = {
        {Op::kTcpConnect, 1.03},          {Op::kUdpSendto, 1.05},
        {Op::kUdpSendConnected, 1.01},    {Op::kTcpBulk, 1.01},
        {Op::kUdpRecv1k, 1.05},           {Op::kUdpRecv100k, 1.05},
        {Op::kUdpRecv1kTwoThreads, 1.05}, {Op::kUdpRecv100kTwoThreads, 1.05}};
    const size_t last = infos.size() - 1;
    bool any = false;
    for (const Aim& aim : kAims) {
      auto egress = verdicts.find({last, aim.op, Variant::kDefault});
      if (egress == verdicts.end()) continue;
      if (!any) {
        std::printf(
            "\nissue 13 aims at %s rules (cpu time ratio; the empty hooks' "
            "ratio is the floor of the hooks alone):\n",
            WithCommas(infos[last].rules).c_str());
        any = true;
      }
      std::string floor = "empty hooks not measured";
      auto empty = verdicts.find({0, aim.op, Variant::kEmptyHooks});
      if (empty != verdicts.end()) {
        floor = absl::StrFormat("empty hooks %.3f%s", empty->second.cpu,
                                empty->second.cpu > aim.at_most
                                    ? ": the floor is above the aim"
                                    : "");
      }
      std::printf("  %-28s <= %.2f: %s (cpu %.3f, wall %.3f; %s)\n",
                  OpName(aim.op), aim.at_most,
                  egress->second.cpu <= aim.at_most ? "PASS" : "FAIL",
                  egress->second.cpu, egress->second.wall, floor.c_str());
    }
  }

  std::printf(
      "\nBPF counters of the enforced target (whole run per rule "
      "count, incl. warm-up)\n");
  for (const RulesetInfo& info : infos) {
    std::printf(
        "  %9s rules: allowed %s, denied %s, replies %s, events_lost %s\n",
        WithCommas(info.rules).c_str(),
        WithCommas(info.counters.allowed).c_str(),
        WithCommas(info.counters.denied).c_str(),
        WithCommas(info.counters.replies).c_str(),
        WithCommas(info.counters.events_lost).c_str());
  }
  for (const std::string& l : reply_checks) std::printf("  %s\n", l.c_str());
  std::printf("  verdict records drained: %s\n",
              WithCommas(events.load()).c_str());
  if (opts.bpf_stats) {
    std::printf(
        "\nBPF run time of the measured set (kernel run_time_ns, all slices "
        "incl. warm-up): per run x runs per timed op, and per op\n");
    for (const std::string& l : stats_lines) std::printf("%s\n", l.c_str());
  }
  for (const std::string& l : reply_mismatches) anomalies.push_back(l);
  for (const std::string& a : anomalies)
    std::printf("ANOMALY: %s\n", a.c_str());

  if (NamesMode(opts)) {
    std::printf(
        "\nBPF time a DNS message adds (ns per run, DNS query or answer "
        "minus a non-DNS datagram of the same socket kind):\n");
    for (size_t ni = 0; ni < infos.size(); ++ni) {
      for (bool audit : {false, true}) {
        const Variant variant = audit ? Variant::kAudit : Variant::kDefault;
        const auto& dns = prog_ns[{ni, Op::kDnsLookup, variant}];
        const auto& echo = prog_ns[{ni, Op::kUdpEcho, variant}];
        for (const char* prog : {"skb_ingress", "skb_egress"}) {
          auto d = dns.find(prog);
          auto e = echo.find(prog);
          if (d == dns.end() || e == echo.end()) continue;
          std::printf(
              "  %9s rules, %-20s %-11s %s: %.0f ns vs %.0f ns: %+.0f ns\n",
              WithCommas(infos[ni].rules).c_str(),
              audit ? "audit, no name rules" : "enforce, name rules", prog,
              std::string(prog) == "skb_ingress" ? "per answer" : "per query",
              d->second, e->second, d->second - e->second);
        }
      }
    }
  }
  if (AuditMode(opts)) {
    // The audit row against the enforce row of the same op (each a ratio
    // to its own baseline slices), and skb_egress's time per run in each:
    // the hold's lookup runs in skb_egress only.
    std::printf(
        "\naudit vs enforce (cpu time ratios to no enforcement; the empty "
        "hooks' is the floor):\n");
    for (size_t ni = 0; ni < infos.size(); ++ni) {
      for (Op op : kAuditOps) {
        auto enforce = verdicts.find({ni, op, Variant::kDefault});
        auto audit = verdicts.find({ni, op, Variant::kAudit});
        if (enforce == verdicts.end() || audit == verdicts.end()) continue;
        std::string floor = "empty hooks not measured";
        if (auto empty = verdicts.find({0, op, Variant::kEmptyHooks});
            empty != verdicts.end()) {
          floor = absl::StrFormat("empty hooks %.3f", empty->second.cpu);
        }
        std::string skb = "skb_egress not timed (--bpf_stats)";
        const auto& enforce_ns = prog_ns[{ni, op, Variant::kDefault}];
        const auto& audit_ns = prog_ns[{ni, op, Variant::kAudit}];
        auto e = enforce_ns.find("skb_egress");
        auto a = audit_ns.find("skb_egress");
        if (e != enforce_ns.end() && a != audit_ns.end()) {
          skb = absl::StrFormat("skb_egress %.0f ns vs %.0f ns per run: %+.0f",
                                a->second, e->second, a->second - e->second);
        }
        std::printf("  %-24s %9s rules: audit %.3f, enforce %.3f (%s); %s\n",
                    OpName(op), WithCommas(infos[ni].rules).c_str(),
                    audit->second.cpu, enforce->second.cpu, floor.c_str(),
                    skb.c_str());
      }
    }
  } else if (UsersMode(opts)) {
    const Verdict v = first_connect.value_or(Verdict{});
    std::printf(
        "\nmode %s: TCP connect of a process of another user, with a user "
        "target present, within 2%% of none: %s (wall time ratio %.3f, "
        "%+.1f%%; cpu time ratio %.3f, %+.1f%%: %s)\n",
        opts.mode.c_str(), v.wall <= 1.02 ? "PASS" : "FAIL", v.wall,
        (v.wall - 1) * 100, v.cpu, (v.cpu - 1) * 100,
        v.cpu <= 1.02 ? "pass" : "fail");
  } else if (connect_at_100k.has_value()) {
    const Verdict& v = *connect_at_100k;
    // Beside it the empty hooks' ratio of the same connect: where that
    // floor alone is above 5%, no program at these hooks can pass here.
    std::string floor;
    if (auto empty = verdicts.find({0, Op::kTcpConnect, Variant::kEmptyHooks});
        empty != verdicts.end()) {
      floor = absl::StrFormat(
          "; empty hooks: wall %.3f, cpu %.3f%s", empty->second.wall,
          empty->second.cpu,
          empty->second.cpu > 1.05 ? ", the floor is above the aim" : "");
    }
    std::printf(
        "\nat 100,000 rules, TCP connect%s within 5%% of no enforcement: %s "
        "(wall time ratio %.3f, %+.1f%%; cpu time ratio %.3f, %+.1f%%: %s%s)\n",
        NamesMode(opts) ? " to a learned address (allowed by a name rule)" : "",
        v.wall <= 1.05 ? "PASS" : "FAIL", v.wall, (v.wall - 1) * 100, v.cpu,
        (v.cpu - 1) * 100, v.cpu <= 1.05 ? "pass" : "fail", floor.c_str());
  } else {
    std::printf(
        "\nat 100,000 rules, TCP connect within 5%% of no enforcement: not "
        "measured (100000 not in --rules)\n");
  }
  std::fflush(stdout);
  return absl::OkStatus();
}

}  // namespace
}  // namespace egress::bench

int main(int argc, char** argv) {
  return egress::bench::BenchMain<egress::bench::Options>(
      "egress_bench", argc, argv, egress::bench::ParseArgs, egress::bench::Run);
}
