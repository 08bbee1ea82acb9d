// Whether the running kernel lets cgroup_skb programs read the network
// namespace of a packet's socket (bpf_get_netns_cookie). DNS bindings are
// keyed by that namespace where it can (bpf/include/egress/dns_abi.h,
// egress_dns_binding_key), so that an answer a target made up in a
// namespace of its own opens nothing in the one its traffic leaves by.
#ifndef EGRESS_USERSPACE_KERNEL_NETNS_COOKIES_H_
#define EGRESS_USERSPACE_KERNEL_NETNS_COOKIES_H_

#include <string>

namespace egress {

// Probed once (libbpf loads a small cgroup_skb program calling the
// helper; needs CAP_BPF like everything else here). A probe that cannot
// run counts as "no".
bool KernelHasSkbNetnsCookie();

// The warning egressd prints at start on a kernel without it; "" when the
// kernel has it.
std::string NetnsCookieWarning();

}  // namespace egress

#endif  // EGRESS_USERSPACE_KERNEL_NETNS_COOKIES_H_
