#include "userspace/cli/run_supervisor.h"

#include <errno.h>
#include <linux/net.h>
#include <poll.h>
#include <seccomp.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <optional>
#include <string>

#include "userspace/common/unique_fd.h"

namespace egress::cli {
namespace {

// The answer to one notification.
struct Verdict {
  int error = EPERM;      // errno the call fails with
  bool carry_on = false;  // let the kernel run the call instead
  std::optional<std::string> line;
};

// Consecutive failures to receive a pending notification before the
// supervisor gives up on the listener instead of spinning on it.
constexpr int kMaxReceiveFailures = 100;

std::string Comm(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/comm");
  std::string comm;
  std::getline(in, comm);
  return comm.empty() ? "?" : comm;
}

std::string CallName(const seccomp_data& data) {
  // x32 calls come with the x86-64 audit arch and __X32_SYSCALL_BIT set.
  constexpr int kX32Bit = 0x40000000;
  const uint32_t arch = data.arch == SCMP_ARCH_X86_64 && (data.nr & kX32Bit)
                            ? SCMP_ARCH_X32
                            : data.arch;
  char* name = seccomp_syscall_resolve_num_arch(arch, data.nr);
  std::string call = name == nullptr ? "?" : name;
  free(name);
  return call;
}

// socketcall(SYS_SOCKET or SYS_SOCKETPAIR, args): the family is the first
// of the (32-bit) words `args` points to.
std::optional<int> SocketcallFamily(pid_t pid, uint64_t args) {
  uint32_t family = 0;
  iovec local{&family, sizeof(family)};
  iovec remote{reinterpret_cast<void*>(args), sizeof(family)};
  if (process_vm_readv(pid, &local, 1, &remote, 1, 0) != sizeof(family)) {
    return std::nullopt;
  }
  return static_cast<int>(family);
}

Verdict Refuse(int error, RefusedCall what, const std::string& call, int family,
               pid_t pid) {
  return {error, false, RefusalLine(what, call, family, pid, Comm(pid))};
}

// i386 processes: the family is read from their memory. The filter only
// notifies these two operations.
Verdict DecideSocketcall(const seccomp_notif& req, int listener,
                         const RunRestrictions& r) {
  const std::string call =
      req.data.args[0] == SYS_SOCKETPAIR ? "socketpair" : "socket";
  std::optional<int> family = SocketcallFamily(req.pid, req.data.args[1]);
  if (!family) return {EFAULT, false, std::nullopt};
  // The pid read from is still the caller (not a reused pid).
  if (seccomp_notify_id_valid(listener, req.id) != 0) return {};
  if (r.FamilyAllowed(*family)) return {0, true, std::nullopt};
  return Refuse(EAFNOSUPPORT, RefusedCall::kFamily, call, *family, req.pid);
}

Verdict Decide(const seccomp_notif& req, int listener,
               const RunRestrictions& r) {
  const std::string call = CallName(req.data);
  const int arg0 = static_cast<int>(req.data.args[0]);
  if (call == "socket" || call == "socketpair") {
    return Refuse(EAFNOSUPPORT, RefusedCall::kFamily, call, arg0, req.pid);
  }
  if (call == "socketcall") return DecideSocketcall(req, listener, r);
  if (call == "unshare" || call == "clone") {
    return Refuse(EPERM, RefusedCall::kUserNamespace, call, 0, req.pid);
  }
  if (call == "io_uring_setup") {
    return Refuse(EPERM, RefusedCall::kIoUring, call, 0, req.pid);
  }
  return {};
}

// Receives and answers one notification; prints its line while fewer than
// kMaxRefusalLines were printed. False when nothing could be received for
// another reason than the caller's death.
bool Answer(int listener, seccomp_notif* req, seccomp_notif_resp* resp,
            const RunRestrictions& r, int* lines) {
  // The kernel refuses a request that is not zeroed (EINVAL), and
  // libseccomp 2.5 leaves the previous one in place.
  memset(req, 0, sizeof(*req));
  if (seccomp_notify_receive(listener, req) != 0) {
    return errno == ENOENT;  // the caller was killed before it was read
  }
  const Verdict v = Decide(*req, listener, r);
  resp->id = req->id;
  resp->val = 0;
  resp->error = v.carry_on ? 0 : -v.error;
  resp->flags = v.carry_on ? SECCOMP_USER_NOTIF_FLAG_CONTINUE : 0;
  // The line goes out before the answer, while the caller waits for it, so
  // that it precedes whatever the command prints about the refusal (a
  // reader of the shared terminal or log sees cause, then effect).
  if (v.line) {
    if (*lines < kMaxRefusalLines) fprintf(stderr, "%s\n", v.line->c_str());
    if (++*lines == kMaxRefusalLines) {
      fprintf(stderr, "egressctl run: further refusals are not shown\n");
    }
  }
  // ENOENT: the caller is gone; nothing to answer.
  seccomp_notify_respond(listener, resp);
  return true;
}

}  // namespace

int SuperviseUntilExit(pid_t pid, UniqueFd owned, const RunRestrictions& r) {
  seccomp_notif* req = nullptr;
  seccomp_notif_resp* resp = nullptr;
  if (owned && seccomp_notify_alloc(&req, &resp) != 0) {
    perror(
        "egressctl run: seccomp_notify_alloc (refused calls now fail "
        "with ENOSYS, unexplained)");
    owned.reset();
  }
  int listener = owned.get();
  // Without a pidfd (before Linux 5.3), poll a little and look again.
  // (glibc 2.36's <sys/pidfd.h> declares pidfd_open without C linkage.)
  UniqueFd exited(static_cast<int>(syscall(SYS_pidfd_open, pid, 0)));
  int lines = 0, failures = 0;
  int wstatus = 0;
  for (;;) {
    const pid_t w = waitpid(pid, &wstatus, WNOHANG);
    if (w == pid || (w < 0 && errno != EINTR)) break;
    pollfd fds[2] = {{exited.get(), POLLIN, 0}, {listener, POLLIN, 0}};
    if (poll(fds, 2, exited ? 1000 : 50) <= 0) continue;
    if (fds[1].revents & POLLIN) {
      failures = Answer(listener, req, resp, r, &lines) ? 0 : failures + 1;
    } else if (fds[1].revents & (POLLHUP | POLLERR | POLLNVAL)) {
      listener = -1;  // no process uses the filter any more
    }
    if (failures == kMaxReceiveFailures) {
      perror(
          "egressctl run: seccomp_notify_receive (refused calls now fail "
          "with ENOSYS, unexplained)");
      owned.reset();  // fail closed: the callers waiting get ENOSYS
      listener = -1;
    }
  }
  if (req != nullptr) seccomp_notify_free(req, resp);
  return wstatus;
}

}  // namespace egress::cli
