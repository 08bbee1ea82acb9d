#include "tests/testing/netns.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <thread>
#include <utility>

#include "absl/random/random.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "tests/testing/file_util.h"
#include "tests/testing/listeners.h"
#include "userspace/common/errno_status.h"
#include "userspace/common/status_macros.h"

namespace egress {
namespace testing {
namespace {

constexpr uint32_t kBenchmarkBase = 0xC6120000;  // 198.18.0.0/15
constexpr uint32_t kNumBlocks = (1u << 17) / 4;  // /30 blocks in the /15.
constexpr absl::Duration kLinkUpTimeout = absl::Seconds(5);

std::string V4(uint32_t host_order) {
  in_addr a = {htonl(host_order)};
  char buf[INET_ADDRSTRLEN];
  ::inet_ntop(AF_INET, &a, buf, sizeof(buf));
  return buf;
}

// True if any local interface (root namespace) already uses an address from
// the /30 starting at `base`.
bool BlockInUse(uint32_t base) {
  ifaddrs* ifa = nullptr;
  if (::getifaddrs(&ifa) != 0) return false;
  bool used = false;
  for (ifaddrs* i = ifa; i != nullptr; i = i->ifa_next) {
    if (i->ifa_addr == nullptr || i->ifa_addr->sa_family != AF_INET) continue;
    uint32_t a =
        ntohl(reinterpret_cast<sockaddr_in*>(i->ifa_addr)->sin_addr.s_addr);
    if ((a & ~3u) == base) used = true;
  }
  ::freeifaddrs(ifa);
  return used;
}

absl::Status Ip(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {"ip"};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunCommandOk(argv).status();
}

absl::Status WaitOperUp(const std::string& ifname, const std::string& netns) {
  absl::Time deadline = absl::Now() + kLinkUpTimeout;
  while (true) {
    absl::StatusOr<CommandResult> r =
        netns.empty() ? RunCommand({"ip", "-o", "link", "show", "dev", ifname})
                      : RunCommand({"ip", "-n", netns, "-o", "link", "show",
                                    "dev", ifname});
    if (r.ok() && r->exit_code == 0 &&
        absl::StrContains(r->output, "state UP")) {
      return absl::OkStatus();
    }
    if (absl::Now() >= deadline) {
      return absl::DeadlineExceededError(absl::StrCat(
          "link ", ifname, netns.empty() ? "" : " in netns " + netns,
          " not operationally up after ", absl::FormatDuration(kLinkUpTimeout),
          r.ok() ? ": " + r->output : ""));
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
}

}  // namespace

absl::StatusOr<std::unique_ptr<TestNetns>> TestNetns::Create(
    absl::string_view name_prefix) {
  if (name_prefix.empty() || absl::StrContains(name_prefix, '/')) {
    return absl::InvalidArgumentError(absl::StrCat(
        "netns name prefix '", name_prefix, "' is not a valid name"));
  }
  absl::BitGen gen;
  uint32_t block = 0;
  bool found = false;
  for (int attempt = 0; attempt < 16 && !found; ++attempt) {
    block = absl::Uniform<uint32_t>(gen, 0, kNumBlocks);
    found = !BlockInUse(kBenchmarkBase + 4 * block);
  }
  if (!found) {
    return absl::ResourceExhaustedError(
        "TestNetns: 16 random /30 blocks of 198.18.0.0/15 were all in use");
  }
  uint32_t tag = absl::Uniform<uint32_t>(gen);
  auto ns = std::unique_ptr<TestNetns>(new TestNetns());
  ns->name_ = absl::StrFormat("egt-%s-%08x", name_prefix, tag);
  ns->host_if_ = absl::StrFormat("egh%08x", tag);  // 11 < IFNAMSIZ chars.
  ns->ns_if_ = absl::StrFormat("egn%08x", tag);
  absl::Status status = ns->Setup(block);
  if (!status.ok()) {
    absl::Status cleanup = ns->Remove();  // Whatever part was created.
    if (!cleanup.ok()) {
      return absl::Status(status.code(), absl::StrCat(status.message(),
                                                      "; cleanup also failed: ",
                                                      cleanup.message()));
    }
    return status;
  }
  return ns;
}

absl::Status TestNetns::Setup(uint32_t block) {
  uint32_t base = kBenchmarkBase + 4 * block;
  host_addr4_ = V4(base + 1);
  ns_addr4_ = V4(base + 2);
  std::string prefix6 = absl::StrFormat("fd65:6774:0:%x::", block);
  host_addr6_ = prefix6 + "1";
  ns_addr6_ = prefix6 + "2";

  EGRESS_RETURN_IF_ERROR(Ip({"netns", "add", name_}));
  EGRESS_RETURN_IF_ERROR(Ip({"link", "add", host_if_, "type", "veth", "peer",
                             "name", ns_if_, "netns", name_}));
  // Root side.
  EGRESS_RETURN_IF_ERROR(
      Ip({"addr", "add", host_addr4_ + "/30", "dev", host_if_}));
  EGRESS_RETURN_IF_ERROR(
      Ip({"-6", "addr", "add", host_addr6_ + "/64", "dev", host_if_, "nodad"}));
  EGRESS_RETURN_IF_ERROR(Ip({"link", "set", host_if_, "up"}));
  // Namespace side.
  EGRESS_RETURN_IF_ERROR(Ip({"-n", name_, "link", "set", "lo", "up"}));
  EGRESS_RETURN_IF_ERROR(
      Ip({"-n", name_, "addr", "add", ns_addr4_ + "/30", "dev", ns_if_}));
  EGRESS_RETURN_IF_ERROR(Ip({"-n", name_, "-6", "addr", "add",
                             ns_addr6_ + "/64", "dev", ns_if_, "nodad"}));
  EGRESS_RETURN_IF_ERROR(Ip({"-n", name_, "link", "set", ns_if_, "up"}));
  EGRESS_RETURN_IF_ERROR(WaitOperUp(host_if_, ""));
  EGRESS_RETURN_IF_ERROR(WaitOperUp(ns_if_, name_));
  return absl::OkStatus();
}

TestNetns::~TestNetns() {
  absl::Status status = Remove();
  if (!status.ok()) {
    std::fprintf(stderr, "TestNetns: cleanup of %s failed: %s\n", name_.c_str(),
                 status.ToString().c_str());
  }
}

absl::Status TestNetns::Remove() {
  if (removed_) return absl::OkStatus();
  absl::Status first_error;
  auto note = [&first_error](absl::Status s) {
    if (!s.ok() && first_error.ok()) first_error = std::move(s);
  };
  std::string netns_file = absl::StrCat("/run/netns/", name_);
  bool have_netns = ::access(netns_file.c_str(), F_OK) == 0;
  if (have_netns) {
    // Processes started by RunInNetns that are still around.
    absl::StatusOr<CommandResult> pids =
        RunCommand({"ip", "netns", "pids", name_});
    if (pids.ok() && pids->exit_code == 0) {
      for (absl::string_view line :
           absl::StrSplit(pids->output, '\n', absl::SkipEmpty())) {
        int pid;
        if (absl::SimpleAtoi(line, &pid) && pid > 1) ::kill(pid, SIGKILL);
      }
    }
  }
  // Deleting one end removes the pair at once; netns teardown would remove it
  // too, but asynchronously.
  if (::if_nametoindex(host_if_.c_str()) != 0) {
    note(Ip({"link", "del", host_if_}));
  }
  if (have_netns) note(Ip({"netns", "del", name_}));
  if (first_error.ok()) removed_ = true;
  return first_error;
}

absl::StatusOr<CommandResult> TestNetns::RunArgvInNetns(
    const std::vector<std::string>& argv, absl::Duration timeout) const {
  std::vector<std::string> full = {"ip", "netns", "exec", name_};
  full.insert(full.end(), argv.begin(), argv.end());
  return RunCommand(full, timeout);
}

absl::StatusOr<CommandResult> TestNetns::RunInNetns(
    const std::string& shell_cmd, absl::Duration timeout) const {
  return RunArgvInNetns({"sh", "-c", shell_cmd}, timeout);
}

absl::StatusOr<UniqueFd> TestNetns::BindSocketInNetns(int type,
                                                      const std::string& addr,
                                                      uint16_t port) const {
  std::string netns_file = absl::StrCat("/run/netns/", name_);
  absl::StatusOr<UniqueFd> result =
      absl::InternalError("BindSocketInNetns: helper thread did not run");
  // setns(CLONE_NEWNET) affects only the calling thread, so a short-lived
  // thread joins the namespace and the socket keeps it after the thread ends.
  std::thread helper([&] {
    UniqueFd nsfd(::open(netns_file.c_str(), O_RDONLY | O_CLOEXEC));
    if (!nsfd) {
      result = ErrnoStatus(errno, "open", netns_file);
      return;
    }
    if (::setns(nsfd.get(), CLONE_NEWNET) != 0) {
      result = ErrnoStatus(errno, "setns", netns_file);
      return;
    }
    result = BindSocket(type, addr, port);
  });
  helper.join();
  return result;
}

}  // namespace testing
}  // namespace egress
