#include "tests/testing/dnsmasq.h"

#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "tests/testing/command.h"
#include "tests/testing/dns_client.h"
#include "tests/testing/file_util.h"
#include "userspace/common/status_macros.h"

namespace egress::testing {
namespace {

constexpr char kDnsmasq[] = "/usr/sbin/dnsmasq";

absl::Status WriteWhole(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".new";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << text;
    if (!out.good()) return absl::InternalError("cannot write " + tmp);
  }
  if (rename(tmp.c_str(), path.c_str()) != 0) {
    return absl::InternalError("cannot rename " + tmp);
  }
  return absl::OkStatus();
}

// 127.x.y.z with x, y in 1..254 and z in 2..254: never 127.0.0.x.
std::string RandomLoopback() {
  absl::BitGen gen;
  return absl::StrCat("127.", absl::Uniform(gen, 1, 255), ".",
                      absl::Uniform(gen, 1, 255), ".",
                      absl::Uniform(gen, 2, 255));
}

bool Answers(const std::string& address, const std::string& name,
             const std::string& expect) {
  const DnsQueryResult r = DnsQuery(address, name);
  return r.error == 0 && std::find(r.addresses.begin(), r.addresses.end(),
                                   expect) != r.addresses.end();
}

}  // namespace

absl::StatusOr<std::unique_ptr<Dnsmasq>> Dnsmasq::Start(
    const DnsmasqConfig& config) {
  if (access(kDnsmasq, X_OK) != 0) {
    return absl::NotFoundError(
        "dnsmasq is missing: install dnsmasq-base (scripts/install_deps.sh)");
  }
  auto d = std::unique_ptr<Dnsmasq>(new Dnsmasq());
  char dir[] = "/tmp/egress-dnsmasq-XXXXXX";
  if (mkdtemp(dir) == nullptr) return absl::InternalError("mkdtemp");
  d->dir_ = dir;
  // A probe name the test never asks for, to see dnsmasq answer.
  const std::string hosts =
      absl::StrCat("127.0.0.1 ready.probe.test\n", config.hosts);
  if (absl::Status st = WriteWhole(d->dir_ + "/hosts", hosts); !st.ok()) {
    return st;
  }
  for (int attempt = 0; attempt < 5; ++attempt) {
    d->address_ = RandomLoopback();
    std::vector<std::string> args = {
        kDnsmasq,
        "--keep-in-foreground",
        "--conf-file=/dev/null",
        "--no-resolv",
        "--no-hosts",
        "--no-poll",
        "--bind-interfaces",
        "--user=root",
        "--group=root",
        "--port=53",
        absl::StrCat("--listen-address=", d->address_),
        absl::StrCat("--addn-hosts=", d->dir_, "/hosts"),
        absl::StrCat("--pid-file=", d->dir_, "/pid"),
        absl::StrCat("--local-ttl=", config.ttl),
        "--log-facility=-"};
    for (const std::string& c : config.cnames) {
      args.push_back(absl::StrCat("--cname=", c));
    }
    DaemonSpec spec;
    spec.argv = std::move(args);
    spec.log_path = d->dir_ + "/log";
    EGRESS_ASSIGN_OR_RETURN(d->pid_, SpawnDaemon(spec));
    absl::Status st = WaitUntilServing(
        &d->pid_, absl::StrCat("dnsmasq on ", d->address_), absl::Seconds(10),
        absl::Milliseconds(50),
        [&d] { return Answers(d->address_, "ready.probe.test", "127.0.0.1"); },
        [&d] { return d->Log(); });
    if (st.ok()) return d;
    if (!absl::IsInternal(st)) return st;
    // It exited: its address may be taken, another one.
  }
  return absl::InternalError(absl::StrCat("dnsmasq did not start: ", d->Log()));
}

Dnsmasq::~Dnsmasq() {
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  if (!dir_.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
}

absl::Status Dnsmasq::SetHosts(const std::string& hosts,
                               const std::string& name,
                               const std::string& expect_address) {
  if (absl::Status st = WriteWhole(
          dir_ + "/hosts", absl::StrCat("127.0.0.1 ready.probe.test\n", hosts));
      !st.ok()) {
    return st;
  }
  if (kill(pid_, SIGHUP) != 0) return absl::InternalError("SIGHUP dnsmasq");
  const absl::Time deadline = absl::Now() + absl::Seconds(5);
  while (absl::Now() < deadline) {
    if (Answers(address_, name, expect_address)) return absl::OkStatus();
    absl::SleepFor(absl::Milliseconds(10));
  }
  return absl::DeadlineExceededError(absl::StrCat(
      "dnsmasq did not answer ", name, " with ", expect_address, ": ", Log()));
}

std::string Dnsmasq::Log() const {
  absl::StatusOr<std::string> log = ReadFile(dir_ + "/log");
  return log.ok() ? *log : "(no log)";
}

}  // namespace egress::testing
