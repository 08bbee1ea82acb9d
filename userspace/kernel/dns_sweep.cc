#include "userspace/kernel/dns_sweep.h"

#include <bpf/bpf.h>
#include <errno.h>

#include <vector>

#include "userspace/common/errno_status.h"
#include "userspace/common/status_macros.h"
#include "userspace/kernel/map_walk.h"

namespace egress {

bool BindingLive(const egress_dns_binding& b, uint64_t now_ns) {
  for (const egress_dns_binding_slot& s : b.slot) {
    if (s.pattern != 0 && s.expires_ns > now_ns) return true;
  }
  return false;
}

bool BindingDeadFor(const egress_dns_binding& b, uint64_t now_ns,
                    uint64_t for_ns) {
  for (const egress_dns_binding_slot& s : b.slot) {
    // expires_ns + for_ns > now_ns, without overflow.
    if (s.pattern != 0 &&
        (s.expires_ns > now_ns || now_ns - s.expires_ns < for_ns)) {
      return false;
    }
  }
  return true;
}

absl::StatusOr<DnsSweep> SweepDnsBindings(int fd, uint64_t now_ns) {
  DnsSweep out;
  std::vector<egress_dns_binding_key> doomed;
  EGRESS_ASSIGN_OR_RETURN(
      out.entries,
      ForEachKey<egress_dns_binding_key>(
          fd, [&](const egress_dns_binding_key& k) {
            egress_dns_binding b;
            if (bpf_map_lookup_elem(fd, &k, &b) != 0) return;  // gone
            DnsSweep::Target& t = out.targets[k.target_id];
            if (BindingLive(b, now_ns)) {
              ++t.live;
            } else if (BindingDeadFor(b, now_ns, EGRESS_DNS_SWEEP_NS)) {
              doomed.push_back(k);
            } else {
              ++t.expired;
            }
          }));
  for (const egress_dns_binding_key& k : doomed) {
    egress_dns_binding taken;
    if (bpf_map_lookup_and_delete_elem(fd, &k, &taken) != 0) {
      if (errno == ENOENT) continue;
      return ErrnoStatus(errno, "bpf_map_lookup_and_delete_elem",
                         "dns_bindings");
    }
    DnsSweep::Target& t = out.targets[k.target_id];
    // The kernel replaced it (a new answer) between the walk and now: what
    // was taken is what is put back. BPF_NOEXIST: a newer one wins.
    if (!BindingDeadFor(taken, now_ns, EGRESS_DNS_SWEEP_NS)) {
      if (bpf_map_update_elem(fd, &k, &taken, BPF_NOEXIST) != 0 &&
          errno != EEXIST) {
        return ErrnoStatus(errno, "bpf_map_update_elem", "dns_bindings");
      }
      ++t.restored;
      ++(BindingLive(taken, now_ns) ? t.live : t.expired);
      continue;
    }
    ++t.swept;
  }
  return out;
}

}  // namespace egress
