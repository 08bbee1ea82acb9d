#include "userspace/kernel/unix_hooks.h"

#include <bpf/bpf.h>
#include <linux/bpf.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "egress/abi.h"
#include "userspace/common/errno_status.h"

namespace egress {
namespace {

struct UnixProgram {
  const char* name;
  int attach_type;
};
constexpr UnixProgram kUnixPrograms[] = {
    {"egress_connect_unix", EGRESS_ATTACH_CGROUP_UNIX_CONNECT},
    {"egress_sendmsg_unix", EGRESS_ATTACH_CGROUP_UNIX_SENDMSG},
};

bool Probe() {
  // r0 = 1; exit
  const bpf_insn insns[] = {
      {.code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = 0, .imm = 1},
      {.code = BPF_JMP | BPF_EXIT},
  };
  LIBBPF_OPTS(bpf_prog_load_opts, opts,
              .expected_attach_type = static_cast<bpf_attach_type>(
                  EGRESS_ATTACH_CGROUP_UNIX_CONNECT));
  int fd = bpf_prog_load(BPF_PROG_TYPE_CGROUP_SOCK_ADDR, "egress_probe", "GPL",
                         insns, 2, &opts);
  if (fd < 0) return false;
  close(fd);
  return true;
}

}  // namespace

bool KernelHasUnixHooks() {
  static const bool has = Probe();
  return has;
}

std::string UnixHooksWarning() {
  if (KernelHasUnixHooks()) return "";
  utsname u{};
  uname(&u);
  return absl::StrCat(
      "WARNING: kernel ", u.release,
      " has no AF_UNIX cgroup hooks (connect_unix/sendmsg_unix, Linux 6.7+):"
      " unix rules are NOT enforced on this host; inet rules are");
}

absl::Status PrepareUnixPrograms(bpf_object* obj, bool enabled) {
  for (const UnixProgram& u : kUnixPrograms) {
    bpf_program* prog = bpf_object__find_program_by_name(obj, u.name);
    if (prog == nullptr) {
      return absl::InternalError(
          absl::StrCat("BPF object has no program ", u.name));
    }
    if (!enabled) {
      bpf_program__set_autoload(prog, false);
      continue;
    }
    if (int err = bpf_program__set_type(prog, BPF_PROG_TYPE_CGROUP_SOCK_ADDR);
        err != 0) {
      return ErrnoStatus(-err, "bpf_program__set_type", u.name);
    }
    if (int err = bpf_program__set_expected_attach_type(
            prog, static_cast<bpf_attach_type>(u.attach_type));
        err != 0) {
      return ErrnoStatus(-err, "bpf_program__set_expected_attach_type", u.name);
    }
  }
  return absl::OkStatus();
}

}  // namespace egress
