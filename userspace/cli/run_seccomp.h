// The seccomp filter of `egressctl run`: what RunRestrictions refuses is
// sent to egressctl as a user notification (SECCOMP_RET_USER_NOTIF), which
// answers with the errno and prints the reason (run_supervisor.h).
//
// Calls notified (per ABI: the native one and, on x86-64, i386 and x32):
//   socket(), socketpair()   domain outside the allowed families
//   socketcall()             SYS_SOCKET and SYS_SOCKETPAIR (i386 glibc
//                            creates sockets only through it; the family is
//                            behind a pointer, so egressctl reads it)
//   unshare(), clone()       flags with CLONE_NEWUSER
//   io_uring_setup()         while a family list is in force
// ptrace(PTRACE_ATTACH / PTRACE_SEIZE), pidfd_getfd() and
// process_vm_writev() fail with EPERM at once (no notification): they reach
// into processes outside the run, whose sockets no hook of the run sees.
// clone3() fails with ENOSYS at once (its flags are behind a pointer that
// seccomp cannot read; glibc then falls back to clone()).
#ifndef EGRESS_USERSPACE_CLI_RUN_SECCOMP_H_
#define EGRESS_USERSPACE_CLI_RUN_SECCOMP_H_

#include <memory>

#include "absl/status/statusor.h"
#include "userspace/cli/run_restrictions.h"
#include "userspace/common/unique_fd.h"

namespace egress::cli {

class RunFilter {
 public:
  // Builds (does not load) the filter. Internal when libseccomp refuses a
  // rule, naming the call.
  static absl::StatusOr<RunFilter> Create(const RunRestrictions& r);

  // In the forked child, after it joined the run's cgroup and before exec:
  // sets no_new_privs and loads the filter. Returns the listener fd, which
  // the caller passes to the parent (SendFd) and closes. Errors name the
  // step (e.g. EBUSY when the caller already has a listener of its own).
  absl::StatusOr<UniqueFd> LoadInChild();

 private:
  struct Release {
    void operator()(void* ctx) const;
  };
  explicit RunFilter(void* ctx) : ctx_(ctx) {}
  std::unique_ptr<void, Release> ctx_;
};

// In the forked child, before exec, whatever the restrictions: puts the
// process in a Landlock domain that takes no file access away, so that the
// kernel refuses it (and what it runs) every ptrace access check on a
// process outside the domain: ptrace attach, /proc/PID/mem, pidfd_getfd(),
// process_vm_writev(). Without that a command could take a socket from a
// process of its uid outside the run's cgroup. Sets no_new_privs. False when
// the kernel has no Landlock (the seccomp rules above remain).
absl::StatusOr<bool> ConfineToOwnProcesses();

// Sends `fd` over the connected unix socket `sock` (SCM_RIGHTS).
absl::Status SendFd(int sock, int fd);
// Receives one fd sent with SendFd; NotFound when the peer closed without
// sending one (the child failed before; it said why on stderr).
absl::StatusOr<UniqueFd> ReceiveFd(int sock);

}  // namespace egress::cli

#endif  // EGRESS_USERSPACE_CLI_RUN_SECCOMP_H_
