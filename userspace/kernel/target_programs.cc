#include "userspace/kernel/target_programs.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "userspace/common/errno_status.h"
#include "userspace/common/status_macros.h"
#include "userspace/common/unique_fd.h"
#include "userspace/kernel/bpffs.h"
#include "userspace/kernel/libbpf_ptr.h"

namespace egress {
namespace {

std::string ProgPin(const std::string& dir, const HookSpec& h) {
  return absl::StrCat(dir, "/prog_", h.name);
}
std::string LinkPin(const std::string& dir, const HookSpec& h) {
  return absl::StrCat(dir, "/link_", h.name);
}

// Pins `fd` at `path`, replacing an existing pin in one rename so that the
// path never goes missing.
absl::Status PinReplace(int fd, const std::string& path) {
  std::string tmp =
      absl::StrCat(path, "_new");  // bpffs refuses names with a dot
  unlink(tmp.c_str());
  if (bpf_obj_pin(fd, tmp.c_str()) != 0) {
    return ErrnoStatus(errno, "bpf_obj_pin", tmp);
  }
  if (rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    unlink(tmp.c_str());
    return ErrnoStatus(err, "rename pin", path);
  }
  return absl::OkStatus();
}

uint64_t LinkCgroupId(int link_fd) {
  bpf_link_info info{};
  uint32_t len = sizeof(info);
  if (bpf_obj_get_info_by_fd(link_fd, &info, &len) != 0) return 0;
  return info.cgroup.cgroup_id;
}

}  // namespace

const std::vector<HookSpec>& AllHooks() {
  static const std::vector<HookSpec> hooks = {
      // Socket creation and options first, so that no raw socket or source
      // route can be set up in the instant before the address hooks attach.
      {"egress_sock_create", "sock_create", BPF_CGROUP_INET_SOCK_CREATE},
      {"egress_setsockopt", "setsockopt", BPF_CGROUP_SETSOCKOPT},
      {"egress_recvmsg4", "recvmsg4", BPF_CGROUP_UDP4_RECVMSG},
      {"egress_recvmsg6", "recvmsg6", BPF_CGROUP_UDP6_RECVMSG},
      {"egress_connect4", "connect4", BPF_CGROUP_INET4_CONNECT},
      {"egress_connect6", "connect6", BPF_CGROUP_INET6_CONNECT},
      {"egress_sendmsg4", "sendmsg4", BPF_CGROUP_UDP4_SENDMSG},
      {"egress_sendmsg6", "sendmsg6", BPF_CGROUP_UDP6_SENDMSG},
      {"egress_skb_egress", "skb_egress", BPF_CGROUP_INET_EGRESS},
      {"egress_sock_ops", "sock_ops", BPF_CGROUP_SOCK_OPS},
  };
  return hooks;
}

absl::Status LoadAndPinPrograms(uint32_t target_id, const std::string& maps_dir,
                                const std::string& prog_dir) {
  LIBBPF_OPTS(bpf_object_open_opts, opts, .pin_root_path = maps_dir.c_str());
  SkeletonPtr skel(egress_bpf__open_opts(&opts));
  if (!skel) return ErrnoStatus(errno, "open BPF object", "egress_bpf");
  skel->rodata->egress_target_id = target_id;
  if (int err = egress_bpf__load(skel.get()); err != 0) {
    return ErrnoStatus(-err, "load BPF programs for target",
                       absl::StrCat(target_id));
  }
  EGRESS_RETURN_IF_ERROR(MakeDirs(prog_dir, 0700));
  for (const HookSpec& h : AllHooks()) {
    bpf_program* prog = bpf_object__find_program_by_name(skel->obj, h.program);
    if (prog == nullptr) {
      return absl::InternalError(
          absl::StrCat("BPF object has no program ", h.program));
    }
    EGRESS_RETURN_IF_ERROR(
        PinReplace(bpf_program__fd(prog), ProgPin(prog_dir, h)));
  }
  return absl::OkStatus();
}

bool ProgramsPinned(const std::string& prog_dir) {
  for (const HookSpec& h : AllHooks()) {
    if (access(ProgPin(prog_dir, h).c_str(), F_OK) != 0) return false;
  }
  return true;
}

absl::Status AttachPinned(const std::string& prog_dir, int cgroup_fd,
                          uint64_t cgroup_id) {
  return AttachPinnedTo(prog_dir, prog_dir, cgroup_fd, cgroup_id);
}

absl::Status AttachPinnedTo(const std::string& prog_dir,
                            const std::string& link_dir, int cgroup_fd,
                            uint64_t cgroup_id) {
  if (link_dir != prog_dir) EGRESS_RETURN_IF_ERROR(MakeDirs(link_dir, 0700));
  struct NewLink {
    const HookSpec* hook;
    UniqueFd fd;
  };
  std::vector<NewLink> fresh;
  // Create every missing link first; unpinned links detach when their fd
  // closes, so an early return leaves nothing new attached.
  for (const HookSpec& h : AllHooks()) {
    std::string link_pin = LinkPin(link_dir, h);
    if (int old = bpf_obj_get(link_pin.c_str()); old >= 0) {
      UniqueFd old_fd(old);
      if (LinkCgroupId(old_fd.get()) == cgroup_id) continue;  // adopt
    }
    std::string prog_pin = ProgPin(prog_dir, h);
    int prog_fd = bpf_obj_get(prog_pin.c_str());
    if (prog_fd < 0) return ErrnoStatus(errno, "bpf_obj_get", prog_pin);
    UniqueFd prog(prog_fd);
    int link =
        bpf_link_create(prog.get(), cgroup_fd,
                        static_cast<bpf_attach_type>(h.attach_type), nullptr);
    if (link < 0) {
      return ErrnoStatus(-link, "attach program",
                         absl::StrCat(h.name, " of ", prog_dir));
    }
    fresh.push_back({&h, UniqueFd(link)});
  }
  for (NewLink& l : fresh) {
    EGRESS_RETURN_IF_ERROR(PinReplace(l.fd.get(), LinkPin(link_dir, *l.hook)));
  }
  return absl::OkStatus();
}

std::vector<LinkState> LinkStates(const std::string& prog_dir) {
  std::vector<LinkState> out;
  for (const HookSpec& h : AllHooks()) {
    LinkState s;
    s.hook = h.name;
    int fd = bpf_obj_get(LinkPin(prog_dir, h).c_str());
    if (fd >= 0) {
      UniqueFd link(fd);
      s.pinned = true;
      s.cgroup_id = LinkCgroupId(link.get());
    }
    out.push_back(s);
  }
  return out;
}

void DetachLinks(const std::string& link_dir) {
  for (const HookSpec& h : AllHooks()) {
    std::string pin = LinkPin(link_dir, h);
    int fd = bpf_obj_get(pin.c_str());
    if (fd < 0) continue;
    UniqueFd link(fd);
    // A defunct link (cgroup gone) answers ENOLINK/EINVAL: nothing to detach.
    bpf_link_detach(link.get());
  }
}

std::vector<std::string> LinkDirsBelow(const std::string& dir) {
  std::vector<std::string> out;
  for (const std::string& name : SubdirNames(dir)) {
    out.push_back(absl::StrCat(dir, "/", name));
  }
  return out;
}

absl::Status DetachAndRemoveLinks(const std::string& link_dir) {
  DetachLinks(link_dir);
  return RemoveTree(link_dir);
}

absl::Status DetachAndRemove(const std::string& prog_dir) {
  DetachLinks(prog_dir);
  for (const std::string& sub : LinkDirsBelow(prog_dir)) DetachLinks(sub);
  return RemoveTree(prog_dir);
}

}  // namespace egress
