#include "tests/privileged/dns_kernel_parser.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/if_ether.h>

#include <cerrno>

#include "absl/strings/str_cat.h"
#include "userspace/common/errno_status.h"
// After egress/dns_abi.h: the skeleton names its types.
#include "dns_parse_test.skel.h"

namespace egress {
namespace testing {
namespace {

void Put16(std::vector<uint8_t>& f, size_t at, size_t v) {
  f[at] = static_cast<uint8_t>(v >> 8);
  f[at + 1] = static_cast<uint8_t>(v);
}

}  // namespace

std::vector<uint8_t> DnsAnswerFrame(const std::vector<uint8_t>& message,
                                    bool ipv6) {
  const size_t ip = ipv6 ? 40 : 20;
  const size_t udp = 8 + message.size();
  std::vector<uint8_t> f(ETH_HLEN + ip + 8, 0);
  Put16(f, 12, ipv6 ? ETH_P_IPV6 : ETH_P_IP);
  uint8_t* h = f.data() + ETH_HLEN;
  if (ipv6) {
    h[0] = 0x60;
    Put16(f, ETH_HLEN + 4, udp);
    h[6] = 17;  // next header: UDP
    h[7] = 64;
    h[23] = 1;  // ::1
    h[39] = 1;  // ::1
  } else {
    h[0] = 0x45;
    Put16(f, ETH_HLEN + 2, ip + udp);
    h[8] = 64;
    h[9] = 17;  // protocol: UDP
    h[12] = h[16] = 127;
    h[15] = h[19] = 1;
  }
  Put16(f, ETH_HLEN + ip, 53);
  Put16(f, ETH_HLEN + ip + 2, 40000);
  Put16(f, ETH_HLEN + ip + 4, udp);
  f.insert(f.end(), message.begin(), message.end());
  return f;
}

void KernelDnsParser::Deleter::operator()(dns_parse_test* skel) const {
  dns_parse_test__destroy(skel);
}

absl::StatusOr<KernelDnsParser> KernelDnsParser::Load() {
  dns_parse_test* skel = dns_parse_test__open_and_load();
  if (skel == nullptr) return ErrnoStatus(errno, "load dns_parse_test");
  KernelDnsParser parser(skel);
  bpf_prog_info info = {};
  uint32_t len = sizeof(info);
  const int fd = bpf_program__fd(skel->progs.dns_parse_test);
  if (int err = bpf_obj_get_info_by_fd(fd, &info, &len); err) {
    return ErrnoStatus(-err, "bpf_obj_get_info_by_fd(dns_parse_test)");
  }
  parser.verified_insns_ = info.verified_insns;
  parser.xlated_bytes_ = info.xlated_prog_len;
  return parser;
}

absl::StatusOr<egress_dns_outcome> KernelDnsParser::Parse(
    const std::vector<uint8_t>& message, bool ipv6) {
  const std::vector<uint8_t> frame = DnsAnswerFrame(message, ipv6);
  const uint64_t runs = skel_->bss->runs;
  LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = frame.data(),
              .data_size_in = static_cast<uint32_t>(frame.size()), .repeat = 1);
  const int fd = bpf_program__fd(skel_->progs.dns_parse_test);
  if (int err = bpf_prog_test_run_opts(fd, &opts); err) {
    return ErrnoStatus(-err, "bpf_prog_test_run_opts(dns_parse_test)");
  }
  total_run_ns_ += opts.duration;
  if (skel_->bss->runs != runs + 1 || skel_->bss->frame != 0 ||
      skel_->bss->dns_len != message.size()) {
    return absl::InternalError(absl::StrCat(
        "dns_parse_test: runs ", skel_->bss->runs - runs, ", frame ",
        skel_->bss->frame, ", message length ", skel_->bss->dns_len,
        " (want 1, 0, ", message.size(), ")"));
  }
  return skel_->bss->dns.out;
}

}  // namespace testing
}  // namespace egress
