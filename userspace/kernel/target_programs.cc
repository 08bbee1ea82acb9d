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
#include "egress/abi.h"
#include "userspace/common/errno_status.h"
#include "userspace/common/fs.h"
#include "userspace/common/status_macros.h"
#include "userspace/common/unique_fd.h"
#include "userspace/kernel/bpffs.h"
#include "userspace/kernel/jiffies_clock.h"
#include "userspace/kernel/libbpf_ptr.h"
#include "userspace/kernel/netns_cookies.h"
#include "userspace/kernel/unix_hooks.h"

namespace egress {

std::string ProgPin(const std::string& dir, const HookSpec& h) {
  return absl::StrCat(dir, "/prog_", h.name);
}
std::string LinkPin(const std::string& dir, const HookSpec& h) {
  return absl::StrCat(dir, "/link_", h.name);
}

namespace {

// Where a pin is staged before it is renamed over its final name (bpffs
// refuses names with a dot).
std::string StagedPin(const std::string& path) {
  return absl::StrCat(path, "_new");
}

// Pins `fd` under the staged name of `path`, clearing a leftover of an
// earlier crash first.
absl::Status PinStaged(int fd, const std::string& path) {
  std::string staged = StagedPin(path);
  unlink(staged.c_str());
  if (bpf_obj_pin(fd, staged.c_str()) != 0) {
    return ErrnoStatus(errno, "bpf_obj_pin", staged);
  }
  return absl::OkStatus();
}

// Renames the staged pin of `path` over `path`: the path never goes missing.
// On failure the staged pin is removed.
absl::Status CommitPin(const std::string& path) {
  std::string staged = StagedPin(path);
  if (rename(staged.c_str(), path.c_str()) != 0) {
    int err = errno;
    unlink(staged.c_str());
    return ErrnoStatus(err, "rename pin", path);
  }
  return absl::OkStatus();
}

// Pins `fd` at `path`, replacing an existing pin atomically.
absl::Status PinReplace(int fd, const std::string& path) {
  EGRESS_RETURN_IF_ERROR(PinStaged(fd, path));
  return CommitPin(path);
}

uint64_t LinkCgroupId(int link_fd) { return LinkInfo(link_fd).cgroup_id; }

// A link created by AttachPinnedTo, and how far its pin got.
struct NewLink {
  size_t hook;      // index in AllHooks()
  std::string pin;  // final link pin path
  UniqueFd fd;
  bool staged = false;     // pinned under StagedPin(pin)
  bool committed = false;  // renamed to `pin`
};

// Takes back an attach that failed part way: detaches every link of the
// call (explicitly, as a reader of a pin may hold it open) and removes the
// pins it made. Pins that the commit replaced are lost; they held links that
// were not live on this cgroup.
void Abandon(std::vector<NewLink>& fresh) {
  for (NewLink& l : fresh) {
    bpf_link_detach(l.fd.get());
    if (l.staged) unlink(StagedPin(l.pin).c_str());
    if (l.committed) unlink(l.pin.c_str());
  }
}

// Creates a link on `cgroup_fd` for every hook whose pin in `link_dir` is
// not already live on `cgroup_id` (those are adopted as they are, into
// `adopted`), appending each to `fresh` as soon as it exists.
// `order`: the hook indexes in the order to attach them; `after`, when
// set, runs once the hook order[0] is attached or adopted.
absl::Status CreateMissingLinks(const std::string& prog_dir,
                                const std::string& link_dir, int cgroup_fd,
                                uint64_t cgroup_id,
                                const std::vector<HookSpec>& hooks,
                                const std::vector<size_t>& order,
                                const std::function<absl::Status()>* after,
                                HeldLinks& adopted,
                                std::vector<NewLink>& fresh) {
  adopted.resize(hooks.size());
  for (size_t n = 0; n < order.size(); ++n) {
    if (n == 1 && after != nullptr) EGRESS_RETURN_IF_ERROR((*after)());
    const size_t i = order[n];
    const HookSpec& h = hooks[i];
    std::string link_pin = LinkPin(link_dir, h);
    absl::StatusOr<UniqueFd> pinned = OpenPin(link_pin);
    // A pin that cannot be read (out of descriptors) may hold the live
    // link: a second link would attach the hook twice.
    if (!pinned.ok() && !absl::IsNotFound(pinned.status())) {
      return pinned.status();
    }
    UniqueFd old = pinned.ok() ? *std::move(pinned) : UniqueFd();
    if (old && LinkCgroupId(old.get()) == cgroup_id) {
      adopted[i] = std::move(old);
      continue;
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
    fresh.push_back({i, link_pin, UniqueFd(link)});
  }
  if (order.size() == 1 && after != nullptr) EGRESS_RETURN_IF_ERROR((*after)());
  return absl::OkStatus();
}

// 0, 1, ... n-1 with `first` moved to the front.
std::vector<size_t> OrderFirst(size_t n, size_t first) {
  std::vector<size_t> order;
  if (first < n) order.push_back(first);
  for (size_t i = 0; i < n; ++i) {
    if (i != first) order.push_back(i);
  }
  return order;
}

absl::Status AttachInOrder(const std::string& prog_dir,
                           const std::string& link_dir, int cgroup_fd,
                           uint64_t cgroup_id, HeldLinks* held,
                           const std::vector<HookSpec>& hooks,
                           const std::vector<size_t>& order,
                           const std::function<absl::Status()>* after) {
  if (link_dir != prog_dir) EGRESS_RETURN_IF_ERROR(MakeDirs(link_dir, 0700));
  HeldLinks links;
  std::vector<NewLink> fresh;
  // Armed before the first link exists: any return below but the last one
  // takes back every link of this call, pinned or not.
  absl::Cleanup undo = [&fresh] { Abandon(fresh); };
  EGRESS_RETURN_IF_ERROR(CreateMissingLinks(prog_dir, link_dir, cgroup_fd,
                                            cgroup_id, hooks, order, after,
                                            links, fresh));
  // Stage every pin before committing any: the step that can fail for a
  // reason of its own (a full or foreign bpffs) fails while no final pin
  // has been replaced yet.
  for (NewLink& l : fresh) {
    EGRESS_RETURN_IF_ERROR(PinStaged(l.fd.get(), l.pin));
    l.staged = true;
  }
  for (NewLink& l : fresh) {
    EGRESS_RETURN_IF_ERROR(CommitPin(l.pin));
    l.staged = false;
    l.committed = true;
  }
  std::move(undo).Cancel();
  if (held != nullptr) {
    // A link held before and replaced here was not live on this cgroup;
    // closing it lets the kernel release it.
    for (NewLink& l : fresh) links[l.hook] = std::move(l.fd);
    *held = std::move(links);
  }
  return absl::OkStatus();
}

}  // namespace

namespace {

std::vector<HookSpec> HooksOfThisKernel() {
  std::vector<HookSpec> hooks = {
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
      // Learns names from DNS answers (bpf/lib/dns_learn.h).
      {"egress_skb_ingress", "skb_ingress", BPF_CGROUP_INET_INGRESS},
      {"egress_sock_ops", "sock_ops", BPF_CGROUP_SOCK_OPS},
  };
  // Only where the kernel has them (unix_hooks.h); a set without them
  // still enforces every inet rule.
  if (KernelHasUnixHooks()) {
    hooks.push_back({"egress_connect_unix", "connect_unix",
                     EGRESS_ATTACH_CGROUP_UNIX_CONNECT});
    hooks.push_back({"egress_sendmsg_unix", "sendmsg_unix",
                     EGRESS_ATTACH_CGROUP_UNIX_SENDMSG});
  }
  return hooks;
}

}  // namespace

const std::vector<HookSpec>& AllHooks() {
  static const std::vector<HookSpec> hooks = HooksOfThisKernel();
  return hooks;
}

const std::vector<HookSpec>& UserHooks() {
  static const std::vector<HookSpec> hooks = [] {
    std::vector<HookSpec> out;
    for (const HookSpec& h : AllHooks()) {
      // Per packet and per TCP state change, for every socket of the host:
      // not at the root (docs/bypasses.md says what that leaves open).
      if (h.attach_type == BPF_CGROUP_INET_EGRESS ||
          h.attach_type == BPF_CGROUP_INET_INGRESS ||
          h.attach_type == BPF_CGROUP_SOCK_OPS) {
        continue;
      }
      out.push_back(h);
    }
    return out;
  }();
  return hooks;
}

const std::vector<HookSpec>& HooksOf(uint32_t target_id) {
  return target_id == EGRESS_TARGET_BY_UID ||
                 target_id == EGRESS_TARGET_BY_CGROUP
             ? UserHooks()
             : AllHooks();
}

absl::Status LoadAndPinPrograms(uint32_t target_id, const std::string& maps_dir,
                                const std::string& prog_dir,
                                const std::vector<HookSpec>* hooks,
                                uint32_t watch_level) {
  LIBBPF_OPTS(bpf_object_open_opts, opts, .pin_root_path = maps_dir.c_str());
  SkeletonPtr skel(egress_bpf__open_opts(&opts));
  if (!skel) return ErrnoStatus(errno, "open BPF object", "egress_bpf");
  skel->rodata->egress_target_id = target_id;
  skel->rodata->egress_watch_level = watch_level;
  skel->rodata->egress_netns_cookies = KernelHasSkbNetnsCookie() ? 1 : 0;
  // Every set, shared or a target's own: a connect to a learned address
  // reads the clock from jiffies (bpf/lib/clock.h).
  WriteClockRodata(KernelJiffiesClock(), skel->rodata);
  EGRESS_RETURN_IF_ERROR(PrepareUnixPrograms(skel->obj, KernelHasUnixHooks()));
  if (int err = egress_bpf__load(skel.get()); err != 0) {
    return ErrnoStatus(-err, "load BPF programs for target",
                       absl::StrCat(target_id));
  }
  EGRESS_RETURN_IF_ERROR(MakeDirs(prog_dir, 0700));
  for (const HookSpec& h : hooks != nullptr ? *hooks : HooksOf(target_id)) {
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

bool ProgramsPinned(const std::string& prog_dir,
                    const std::vector<HookSpec>& hooks) {
  for (const HookSpec& h : hooks) {
    if (access(ProgPin(prog_dir, h).c_str(), F_OK) != 0) return false;
  }
  return true;
}

absl::Status AttachPinned(const std::string& prog_dir, int cgroup_fd,
                          uint64_t cgroup_id, HeldLinks* held,
                          const std::vector<HookSpec>& hooks) {
  return AttachPinnedTo(prog_dir, prog_dir, cgroup_fd, cgroup_id, held, hooks);
}

absl::Status AttachPinnedTo(const std::string& prog_dir,
                            const std::string& link_dir, int cgroup_fd,
                            uint64_t cgroup_id, HeldLinks* held,
                            const std::vector<HookSpec>& hooks) {
  return AttachInOrder(prog_dir, link_dir, cgroup_fd, cgroup_id, held, hooks,
                       OrderFirst(hooks.size(), 0), nullptr);
}

absl::Status AttachPinnedFirst(
    const std::string& prog_dir, const std::string& link_dir, int cgroup_fd,
    uint64_t cgroup_id, HeldLinks* held, const std::vector<HookSpec>& hooks,
    size_t first, const std::function<absl::Status()>& after_first) {
  return AttachInOrder(prog_dir, link_dir, cgroup_fd, cgroup_id, held, hooks,
                       OrderFirst(hooks.size(), first), &after_first);
}

int KeepPinned(const std::string& link_dir, HeldLinks& held,
               const std::vector<HookSpec>& hooks) {
  held.resize(hooks.size());
  int repinned = 0;
  for (size_t i = 0; i < held.size(); ++i) {
    LinkIds mine = held[i] ? LinkInfo(held[i].get()) : LinkIds{};
    if (mine.cgroup_id == 0) held[i].reset();  // its cgroup is gone
    std::string pin = LinkPin(link_dir, hooks[i]);
    absl::StatusOr<UniqueFd> opened = OpenPin(pin);
    // Unreadable is not missing: pinning the held link over it could
    // replace (and so detach) another live link. The next pass looks again.
    if (!opened.ok() && !absl::IsNotFound(opened.status())) continue;
    UniqueFd pinned = opened.ok() ? *std::move(opened) : UniqueFd();
    if (pinned) {
      LinkIds theirs = LinkInfo(pinned.get());
      if (theirs.cgroup_id != 0 && theirs.id != mine.id) {
        held[i] = std::move(pinned);  // adopt what the pin holds
      }
      continue;
    }
    if (!held[i]) continue;
    // The pin went, the link did not: pin it again (the directory too, if
    // it went with it).
    if (MakeDirs(link_dir, 0700).ok() && PinReplace(held[i].get(), pin).ok()) {
      ++repinned;
    }
  }
  return repinned;
}

int KeepProgramsPinned(const std::string& prog_dir,
                       const std::vector<const HeldLinks*>& held,
                       const std::vector<HookSpec>& hooks) {
  int repinned = 0;
  for (size_t i = 0; i < hooks.size(); ++i) {
    std::string pin = ProgPin(prog_dir, hooks[i]);
    if (access(pin.c_str(), F_OK) == 0) continue;
    for (const HeldLinks* links : held) {
      if (links->size() <= i || !(*links)[i]) continue;
      UniqueFd prog(bpf_prog_get_fd_by_id(LinkInfo((*links)[i].get()).prog_id));
      if (prog && MakeDirs(prog_dir, 0700).ok() &&
          PinReplace(prog.get(), pin).ok()) {
        ++repinned;
        break;
      }
    }
  }
  return repinned;
}

void DetachHeld(HeldLinks& held) {
  for (UniqueFd& link : held) {
    if (link) bpf_link_detach(link.get());
    link.reset();
  }
}

std::vector<LinkState> LinkStates(const std::string& prog_dir,
                                  const std::vector<HookSpec>& hooks) {
  std::vector<LinkState> out;
  for (const HookSpec& h : hooks) {
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

LinkHealth CheckLinks(const std::string& link_dir, uint64_t cgroup_id,
                      const HeldLinks* held,
                      const std::vector<HookSpec>& hooks) {
  LinkHealth health;
  std::vector<LinkState> states = LinkStates(link_dir, hooks);
  for (size_t i = 0; i < states.size(); ++i) {
    LinkState& l = states[i];
    if (held != nullptr && i < held->size() && (*held)[i] &&
        (!l.pinned || l.cgroup_id == 0)) {
      l.pinned = true;
      l.cgroup_id = LinkCgroupId((*held)[i].get());
    }
    ++health.total;
    if (!l.pinned || l.cgroup_id == 0) continue;
    ++health.attached;
    if (l.cgroup_id == cgroup_id) ++health.live;
  }
  return health;
}

LinkHealth ReadLinks(const std::string& link_dir, uint64_t cgroup_id,
                     const HeldLinks& held,
                     const std::vector<HookSpec>& hooks) {
  LinkHealth health;
  for (size_t i = 0; i < hooks.size(); ++i) {
    // KeepPinned's decisions, step by step, without acting on them.
    const bool holds = i < held.size() && held[i];
    LinkIds mine = holds ? LinkInfo(held[i].get()) : LinkIds{};
    if (holds && mine.cgroup_id == 0) ++health.unsettled;  // to let go
    UniqueFd pinned(bpf_obj_get(LinkPin(link_dir, hooks[i]).c_str()));
    LinkIds theirs = pinned ? LinkInfo(pinned.get()) : LinkIds{};
    if (pinned && theirs.cgroup_id != 0 && theirs.id != mine.id) {
      ++health.unsettled;  // to adopt
    } else if (!pinned && mine.cgroup_id != 0) {
      ++health.unsettled;  // to pin again
    }
    // CheckLinks: the pinned link when it is attached, else the held one.
    uint64_t on = theirs.cgroup_id != 0 ? theirs.cgroup_id : mine.cgroup_id;
    ++health.total;
    if (on == 0) continue;
    ++health.attached;
    if (on == cgroup_id) ++health.live;
  }
  return health;
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

LinkIds LinkInfo(int link_fd) {
  bpf_link_info info{};
  uint32_t len = sizeof(info);
  if (bpf_obj_get_info_by_fd(link_fd, &info, &len) != 0) return {};
  return {info.id, info.cgroup.cgroup_id, info.prog_id};
}

}  // namespace egress
