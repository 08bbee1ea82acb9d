#include "userspace/kernel/netns_cookies.h"

#include <bpf/libbpf.h>
#include <linux/bpf.h>
#include <sys/utsname.h>

#include "absl/strings/str_cat.h"

namespace egress {

bool KernelHasSkbNetnsCookie() {
  static const bool has =
      libbpf_probe_bpf_helper(BPF_PROG_TYPE_CGROUP_SKB,
                              BPF_FUNC_get_netns_cookie, nullptr) == 1;
  return has;
}

std::string NetnsCookieWarning() {
  if (KernelHasSkbNetnsCookie()) return "";
  utsname u{};
  uname(&u);
  return absl::StrCat(
      "WARNING: kernel ", u.release,
      " does not let cgroup_skb programs read a socket's network namespace:"
      " a name learned from a DNS answer is bound for every namespace of its"
      " target, so a target that can make a network namespace of its own can"
      " have a name rule allow an address of its choice (docs/bypasses.md)");
}

}  // namespace egress
