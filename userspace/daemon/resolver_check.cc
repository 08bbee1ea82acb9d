#include "userspace/daemon/resolver_check.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/stat.h>

#include <algorithm>
#include <array>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "userspace/common/root_file.h"
#include "userspace/daemon/cgroup_pids.h"
#include "userspace/events/event_json.h"

namespace egress {
namespace {

// A configuration file of the view under `root_fd`: its text, "" when it
// is not there, nullopt (and why in `unreadable`) when it is there but is
// not a regular file of at most kMaxConfigBytes, or cannot be read.
std::optional<std::string> ConfigText(int root_fd, const std::string& rel,
                                      std::vector<std::string>& unreadable) {
  absl::StatusOr<std::string> text =
      ReadFileInRoot(root_fd, rel, kMaxConfigBytes);
  if (text.ok()) return *std::move(text);
  if (absl::IsNotFound(text.status())) return "";
  unreadable.push_back(std::string(text.status().message()));
  return std::nullopt;
}

// A unix socket at `rel` of the view (symlinks followed inside it).
bool IsSocket(int root_fd, const std::string& rel) {
  absl::StatusOr<struct stat> st = StatInRoot(root_fd, rel);
  return st.ok() && S_ISSOCK(st->st_mode);
}

// Lines without comments ('#' to the end), trimmed, empty ones left out.
std::vector<std::string> ConfigLines(const std::string& text) {
  std::vector<std::string> out;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    line = line.substr(0, line.find('#'));
    line = absl::StripAsciiWhitespace(line);
    if (!line.empty()) out.emplace_back(line);
  }
  return out;
}

std::vector<std::string> Words(absl::string_view line) {
  return absl::StrSplit(line, absl::ByAnyChar(" \t"), absl::SkipEmpty());
}

// True when `source` comes before "dns" among `sources` (or there is no
// "dns" at all): lookups go to it first.
bool Before(const std::vector<std::string>& sources, absl::string_view source) {
  auto s = std::find(sources.begin(), sources.end(), source);
  auto d = std::find(sources.begin(), sources.end(), "dns");
  return s != sources.end() && s < d;
}

// True when a rule of `rules` allows 53/udp to the address `ns`.
bool ResolverAllowed(absl::Span<const policy::Rule> rules,
                     const std::string& ns) {
  std::array<uint8_t, 16> addr{};
  uint8_t family = 4;
  if (inet_pton(AF_INET, ns.c_str(), addr.data()) != 1) {
    if (inet_pton(AF_INET6, ns.c_str(), addr.data()) != 1) return true;
    family = 6;
  }
  bool allowed = false;
  for (const policy::Rule& r : rules) {
    if (!policy::RuleMatches(r, IPPROTO_UDP, 53, family, addr)) continue;
    if (r.action == policy::Action::kDeny) return false;
    allowed = true;
  }
  return allowed;
}

}  // namespace

std::optional<std::vector<std::string>> NsswitchHostsSources(
    const std::string& nsswitch_conf) {
  for (const std::string& line : ConfigLines(nsswitch_conf)) {
    absl::string_view rest = line;
    if (!absl::ConsumePrefix(&rest, "hosts:")) continue;
    std::vector<std::string> sources;
    bool in_action = false;
    for (const std::string& w : Words(rest)) {
      if (absl::StartsWith(w, "[")) in_action = true;
      if (!in_action) sources.push_back(absl::AsciiStrToLower(w));
      if (absl::EndsWith(w, "]")) in_action = false;
    }
    return sources;
  }
  return std::nullopt;
}

std::vector<std::string> ResolvConfNameservers(const std::string& resolv_conf) {
  std::vector<std::string> out;
  for (const std::string& line : ConfigLines(resolv_conf)) {
    std::vector<std::string> w = Words(line);
    if (w.size() >= 2 && w[0] == "nameserver") {
      // A link-local IPv6 server may carry a zone: fe80::1%eth0.
      out.push_back(w[1].substr(0, w[1].find('%')));
    }
  }
  return out;
}

std::optional<bool> NscdCachesHosts(const std::string& nscd_conf) {
  std::optional<bool> out;
  for (const std::string& line : ConfigLines(nscd_conf)) {
    std::vector<std::string> w = Words(line);
    if (w.size() >= 3 && w[0] == "enable-cache" && w[1] == "hosts") {
      out = w[2] == "yes";
    }
  }
  return out;
}

ResolverView ReadResolverViewAt(int root_fd) {
  ResolverView v;
  std::vector<std::string>& why = v.unreadable;
  if (auto t = ConfigText(root_fd, "/etc/nsswitch.conf", why)) {
    v.hosts_sources = NsswitchHostsSources(*t);
  }
  v.nscd_socket = IsSocket(root_fd, "/var/run/nscd/socket") ||
                  IsSocket(root_fd, "/run/nscd/socket");
  if (auto t = ConfigText(root_fd, "/etc/nscd.conf", why)) {
    v.nscd_hosts_cache = NscdCachesHosts(*t);
  }
  v.resolved_socket =
      IsSocket(root_fd, "/run/systemd/resolve/io.systemd.Resolve");
  if (auto t = ConfigText(root_fd, "/etc/resolv.conf", why)) {
    v.nameservers = ResolvConfNameservers(*t);
  }
  return v;
}

ResolverView ReadResolverView(const std::string& root) {
  absl::StatusOr<UniqueFd> fd = OpenRootDir(root);
  if (!fd.ok()) {
    ResolverView v;
    v.unreadable.push_back(std::string(fd.status().message()));
    return v;
  }
  return ReadResolverViewAt(fd->get());
}

std::vector<std::string> ResolverWarnings(
    const ResolverView& v, absl::Span<const policy::Rule> rules) {
  std::vector<std::string> out;
  // What could not be read could say anything: nothing else is concluded.
  if (!v.unreadable.empty()) {
    for (const std::string& why : v.unreadable) {
      out.push_back(
          absl::StrCat("hides how it resolves: ", why,
                       " (egressd reads only regular files of at most ",
                       kMaxConfigBytes, " bytes of a target's view)"));
    }
    return out;
  }
  if (v.nscd_socket && v.nscd_hosts_cache.value_or(true)) {
    out.push_back(absl::StrCat(
        "sees nscd's socket (/var/run/nscd/socket) and nscd caches hosts: "
        "glibc asks nscd, which resolves in its own process, so no answer "
        "reaches the target's sockets and its names are never learned "
        "(set \"enable-cache hosts no\" in nscd.conf, or hide the socket "
        "from the target)"));
  }
  const std::vector<std::string> sources =
      v.hosts_sources.value_or(std::vector<std::string>{"dns", "files"});
  if (Before(sources, "resolve") && v.resolved_socket) {
    out.push_back(absl::StrCat(
        "resolves through systemd-resolved (nsswitch.conf hosts: ",
        absl::StrJoin(sources, " "),
        "; /run/systemd/resolve/io.systemd.Resolve): resolved asks DNS "
        "from its own process, so the target's names are never learned "
        "(put \"dns\" before \"resolve\" in the target's nsswitch.conf; "
        "its resolv.conf may name resolved's stub 127.0.0.53)"));
  }
  if (std::find(sources.begin(), sources.end(), "dns") != sources.end()) {
    for (const std::string& ns : v.nameservers) {
      if (!ResolverAllowed(rules, ns)) {
        out.push_back(absl::StrCat(
            "asks the resolver ", ns,
            " (resolv.conf), which no rule allows on 53/udp: its answers are "
            "ignored (egressctl allow dns ",
            ns, ")"));
      }
    }
  }
  return out;
}

std::vector<std::string> TargetResolverWarnings(
    const std::string& abs_path, absl::Span<const policy::Rule> rules,
    size_t max_processes) {
  std::vector<std::string> out;
  std::set<std::string> seen;
  // Processes that share a mount namespace and a root see the same files:
  // each view is read once.
  std::set<std::array<uint64_t, 4>> views;
  const absl::StatusOr<UniqueFd> proc = OpenRootDir("/proc");
  for (const std::string& pid : CgroupPids(abs_path, max_processes)) {
    // The target's root, held open: the process may exit or the pid be
    // reused while its files are read, never the directory read under.
    absl::StatusOr<UniqueFd> root =
        OpenRootDir(absl::StrCat("/proc/", pid, "/root"));
    struct stat r, ns;
    if (!root.ok() || fstat(root->get(), &r) != 0 ||
        stat(absl::StrCat("/proc/", pid, "/ns/mnt").c_str(), &ns) != 0 ||
        !views.insert({r.st_dev, r.st_ino, ns.st_dev, ns.st_ino}).second) {
      continue;
    }
    // The same view (file contents) gives the same warning: said once,
    // for the first process that has it.
    for (const std::string& w :
         ResolverWarnings(ReadResolverViewAt(root->get()), rules)) {
      if (!seen.insert(w).second) continue;
      // comm is the kernel's (procfs), at most 16 bytes.
      absl::StatusOr<std::string> comm =
          proc.ok()
              ? ReadFileInRoot(proc->get(), absl::StrCat(pid, "/comm"), 64)
              : proc.status();
      out.push_back(absl::StrCat(
          "process ",
          AsciiOnly(absl::StripAsciiWhitespace(comm.ok() ? *comm : "")), "[",
          pid, "] ", w));
    }
  }
  return out;
}

}  // namespace egress
