// Whether a target's name rules can learn anything: the kernel learns a
// name only from a DNS answer to a query the target's own socket sent to
// port 53. A process that resolves through a daemon over a unix socket
// (nscd; systemd-resolved via nss-resolve and its varlink socket) gets its
// addresses with no DNS packet of its own, so its names stay unlearned and
// its connects to them denied. Read from each process's own view of the
// files (/proc/PID/root), never from the host's.
#ifndef EGRESS_USERSPACE_DAEMON_RESOLVER_CHECK_H_
#define EGRESS_USERSPACE_DAEMON_RESOLVER_CHECK_H_

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "absl/types/span.h"
#include "userspace/policy/rule.h"

namespace egress {

// The most of one configuration file of a target's view that is read; a
// larger one is not read at all.
inline constexpr size_t kMaxConfigBytes = 64 * 1024;

// What a process sees of name resolution under one root directory.
struct ResolverView {
  // The sources of the "hosts:" line of etc/nsswitch.conf, in order
  // ([...] actions left out); nullopt when there is no such file or line
  // (glibc then uses "dns files").
  std::optional<std::vector<std::string>> hosts_sources;
  bool nscd_socket = false;  // var/run/nscd/socket or run/nscd/socket
  // etc/nscd.conf's "enable-cache hosts": nullopt when not said (nscd's
  // default caches hosts).
  std::optional<bool> nscd_hosts_cache;
  bool resolved_socket = false;  // run/systemd/resolve/io.systemd.Resolve
  std::vector<std::string> nameservers;  // etc/resolv.conf
  // Why a file of the three is there but was not read (not a regular file,
  // too large, a magic link on the way, ...): then nothing can be told.
  std::vector<std::string> unreadable;
};

// The hosts sources of one nsswitch.conf text; nullopt without a hosts line.
std::optional<std::vector<std::string>> NsswitchHostsSources(
    const std::string& nsswitch_conf);
// The nameserver addresses of one resolv.conf text.
std::vector<std::string> ResolvConfNameservers(const std::string& resolv_conf);
// nscd.conf's "enable-cache hosts yes|no"; nullopt when not said.
std::optional<bool> NscdCachesHosts(const std::string& nscd_conf);

// Reads the view under `root` ("/proc/42/root", or a fixture directory),
// which its owner controls: names resolve inside it (an absolute symlink is
// the view's, never egressd's), magic links are not followed, and only
// regular files of at most kMaxConfigBytes are opened for reading (a FIFO
// or a device never is, so nothing here blocks); anything else goes to
// `unreadable`.
ResolverView ReadResolverView(const std::string& root);
// The same under a directory already open (OpenRootDir).
ResolverView ReadResolverViewAt(int root_fd);

// Why names cannot be learned for a process with view `v` (empty when
// nothing says so; when a file could not be read, only why), and a resolver of
// resolv.conf no rule of `rules` allows on 53/udp (its answers are ignored).
// Each starts with a verb, for a subject naming the process: "sees nscd's
// socket ...".
std::vector<std::string> ResolverWarnings(const ResolverView& v,
                                          absl::Span<const policy::Rule> rules);

// ResolverWarnings of the processes of the cgroup tree at `abs_path` (at
// most `max_processes`), each distinct warning once, for the first process
// that has it: "process nginx[42] sees nscd's socket ...".
std::vector<std::string> TargetResolverWarnings(
    const std::string& abs_path, absl::Span<const policy::Rule> rules,
    size_t max_processes);

}  // namespace egress

#endif  // EGRESS_USERSPACE_DAEMON_RESOLVER_CHECK_H_
