#include "userspace/cli/run_seccomp.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/landlock.h>
#include <linux/net.h>
#include <linux/ptrace.h>
#include <sched.h>
#include <seccomp.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>
#include <initializer_list>

#include "absl/strings/str_cat.h"
#include "userspace/common/errno_status.h"
#include "userspace/common/status_macros.h"

namespace egress::cli {
namespace {

absl::Status RuleError(int rc, const char* call) {
  return ErrnoStatus(-rc, "seccomp_rule_add", call);
}

// Notifies `call` when the cmp on its first argument holds.
absl::Status Notify(scmp_filter_ctx ctx, const char* call, scmp_arg_cmp cmp) {
  const int nr = seccomp_syscall_resolve_name(call);
  if (nr == __NR_SCMP_ERROR) {
    return absl::InternalError(absl::StrCat("no system call named ", call));
  }
  const int rc = seccomp_rule_add(ctx, SCMP_ACT_NOTIFY, nr, 1, cmp);
  return rc == 0 ? absl::OkStatus() : RuleError(rc, call);
}

absl::Status AddFamilyRules(scmp_filter_ctx ctx, const RunRestrictions& r) {
  const RefusedFamilies refused = RefusedFamilyValues(r);
  for (const char* call : {"socket", "socketpair"}) {
    EGRESS_RETURN_IF_ERROR(
        Notify(ctx, call, SCMP_A0(SCMP_CMP_LT, refused.lowest)));
    EGRESS_RETURN_IF_ERROR(
        Notify(ctx, call, SCMP_A0(SCMP_CMP_GT, refused.highest)));
    for (uint64_t family : refused.between) {
      EGRESS_RETURN_IF_ERROR(Notify(ctx, call, SCMP_A0(SCMP_CMP_EQ, family)));
    }
  }
  // i386: socket() and socketpair() through socketcall(); libseccomp adds
  // the rule only where the call exists.
  for (uint64_t op : {SYS_SOCKET, SYS_SOCKETPAIR}) {
    EGRESS_RETURN_IF_ERROR(Notify(ctx, "socketcall", SCMP_A0(SCMP_CMP_EQ, op)));
  }
  return absl::OkStatus();
}

absl::Status AddUserNamespaceRules(scmp_filter_ctx ctx) {
  for (const char* call : {"unshare", "clone"}) {
    EGRESS_RETURN_IF_ERROR(Notify(
        ctx, call, SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_NEWUSER, CLONE_NEWUSER)));
  }
  const int rc =
      seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
  return rc == 0 ? absl::OkStatus() : RuleError(rc, "clone3");
}

// A socket belongs to the cgroup of the process that made it, so one taken
// from a process outside the run passes none of the run's hooks. Attaching
// to such a process (to make it call socket()), writing its memory, and
// copying a descriptor out of it all fail with EPERM; the Landlock domain of
// ConfineToOwnProcesses() refuses them too, and /proc/PID/mem besides.
absl::Status AddOtherProcessRules(scmp_filter_ctx ctx) {
  for (uint64_t request : {PTRACE_ATTACH, PTRACE_SEIZE}) {
    const int rc =
        seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(ptrace), 1,
                         SCMP_A0(SCMP_CMP_EQ, request));
    if (rc != 0) return RuleError(rc, "ptrace");
  }
  for (const char* call : {"pidfd_getfd", "process_vm_writev"}) {
    const int nr = seccomp_syscall_resolve_name(call);
    if (nr == __NR_SCMP_ERROR) continue;
    const int rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), nr, 0);
    if (rc != 0) return RuleError(rc, call);
  }
  return absl::OkStatus();
}

absl::Status AddArchitectures(scmp_filter_ctx ctx) {
#if defined(__x86_64__)
  for (uint32_t arch : {SCMP_ARCH_X86, SCMP_ARCH_X32}) {
#elif defined(__aarch64__)
  for (uint32_t arch : {SCMP_ARCH_ARM}) {
#else
  for (uint32_t arch : std::initializer_list<uint32_t>{}) {
#endif
    const int rc = seccomp_arch_add(ctx, arch);
    if (rc != 0 && rc != -EEXIST) {
      return ErrnoStatus(-rc, "seccomp_arch_add");
    }
  }
  return absl::OkStatus();
}

absl::Status AddRules(scmp_filter_ctx ctx, const RunRestrictions& r) {
  EGRESS_RETURN_IF_ERROR(AddArchitectures(ctx));
  EGRESS_RETURN_IF_ERROR(AddOtherProcessRules(ctx));
  if (!r.any_family) {
    EGRESS_RETURN_IF_ERROR(AddFamilyRules(ctx, r));
  }
  if (!r.allow_userns) {
    EGRESS_RETURN_IF_ERROR(AddUserNamespaceRules(ctx));
  }
  if (r.RefusesIoUring()) {
    const int rc =
        seccomp_rule_add(ctx, SCMP_ACT_NOTIFY, SCMP_SYS(io_uring_setup), 0);
    if (rc != 0) return RuleError(rc, "io_uring_setup");
  }
  return absl::OkStatus();
}

}  // namespace

void RunFilter::Release::operator()(void* ctx) const { seccomp_release(ctx); }

absl::StatusOr<RunFilter> RunFilter::Create(const RunRestrictions& r) {
  scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
  if (ctx == nullptr) return absl::InternalError("seccomp_init failed");
  RunFilter filter(ctx);
  EGRESS_RETURN_IF_ERROR(AddRules(ctx, r));
  return filter;
}

absl::StatusOr<UniqueFd> RunFilter::LoadInChild() {
  // Root does not need it, but a command that is not root would, and it
  // keeps setuid programs from gaining what the filter does not expect.
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
    return ErrnoStatus(errno, "prctl(PR_SET_NO_NEW_PRIVS)");
  }
  if (const int rc = seccomp_load(ctx_.get()); rc != 0) {
    return ErrnoStatus(-rc, "seccomp_load", "the run's filter");
  }
  const int fd = seccomp_notify_fd(ctx_.get());
  if (fd < 0) return ErrnoStatus(-fd, "seccomp_notify_fd");
  return UniqueFd(fd);
}

absl::StatusOr<bool> ConfineToOwnProcesses() {
  // landlock_restrict_self() needs it without CAP_SYS_ADMIN.
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
    return ErrnoStatus(errno, "prctl(PR_SET_NO_NEW_PRIVS)");
  }
  // A ruleset must handle some access; execute, allowed again below "/",
  // takes nothing away. What the domain brings is Landlock's ptrace rule.
  landlock_ruleset_attr attr{};
  attr.handled_access_fs = LANDLOCK_ACCESS_FS_EXECUTE;
  const int ruleset = static_cast<int>(
      syscall(SYS_landlock_create_ruleset, &attr, sizeof(attr), 0));
  if (ruleset < 0) {
    if (errno == ENOSYS || errno == EOPNOTSUPP) return false;
    return ErrnoStatus(errno, "landlock_create_ruleset");
  }
  UniqueFd ruleset_fd(ruleset);
  UniqueFd root(open("/", O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!root) return ErrnoStatus(errno, "open", "/");
  landlock_path_beneath_attr everything{};
  everything.allowed_access = LANDLOCK_ACCESS_FS_EXECUTE;
  everything.parent_fd = root.get();
  if (syscall(SYS_landlock_add_rule, ruleset_fd.get(),
              LANDLOCK_RULE_PATH_BENEATH, &everything, 0) != 0) {
    return ErrnoStatus(errno, "landlock_add_rule", "/");
  }
  if (syscall(SYS_landlock_restrict_self, ruleset_fd.get(), 0) != 0) {
    return ErrnoStatus(errno, "landlock_restrict_self");
  }
  return true;
}

// One byte with room for one fd in its control data.
struct FdMessage {
  char byte = 0;
  iovec iov{&byte, 1};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr msg{};
  FdMessage() {
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
  }
};

absl::Status SendFd(int sock, int fd) {
  FdMessage m;
  cmsghdr* c = CMSG_FIRSTHDR(&m.msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(c), &fd, sizeof(int));
  if (sendmsg(sock, &m.msg, MSG_NOSIGNAL) != 1) {
    return ErrnoStatus(errno, "sendmsg(SCM_RIGHTS)", "the filter's listener");
  }
  return absl::OkStatus();
}

absl::StatusOr<UniqueFd> ReceiveFd(int sock) {
  FdMessage m;
  ssize_t n;
  do {
    n = recvmsg(sock, &m.msg, MSG_CMSG_CLOEXEC);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return ErrnoStatus(errno, "recvmsg", "the filter's listener");
  cmsghdr* c = CMSG_FIRSTHDR(&m.msg);
  if (n == 0 || c == nullptr || c->cmsg_type != SCM_RIGHTS) {
    return absl::NotFoundError("the command sent no seccomp listener");
  }
  int fd = -1;
  memcpy(&fd, CMSG_DATA(c), sizeof(int));
  return UniqueFd(fd);
}

}  // namespace egress::cli
