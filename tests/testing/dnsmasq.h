// A real DNS server for the name-rule tests: dnsmasq (Debian dnsmasq-base)
// on port 53 of a loopback address of its own (127.x.y.z, picked at random
// so that parallel tests do not collide), answering only from a hosts file
// and CNAMEs the test writes: no upstream, no /etc/hosts, no resolv.conf, so
// nothing it is asked leaves the machine. It runs in the foreground, dies
// with the test process (PR_SET_PDEATHSIG) and is stopped, reaped and its
// directory removed by the destructor, also when the test fails.
#ifndef EGRESS_TESTS_TESTING_DNSMASQ_H_
#define EGRESS_TESTS_TESTING_DNSMASQ_H_

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace egress::testing {

struct DnsmasqConfig {
  // Lines of the hosts file: "ADDRESS NAME...".
  std::string hosts;
  // --cname values: "alias,target" (the target must be in hosts).
  std::vector<std::string> cnames;
  // TTL of every answer (--local-ttl), seconds.
  int ttl = 300;
};

class Dnsmasq {
 public:
  // NotFound when /usr/sbin/dnsmasq is missing (scripts/install_deps.sh
  // installs dnsmasq-base); Internal/DeadlineExceeded when it does not start
  // answering within 10 s (its log is in the message).
  static absl::StatusOr<std::unique_ptr<Dnsmasq>> Start(
      const DnsmasqConfig& config);
  ~Dnsmasq();
  Dnsmasq(const Dnsmasq&) = delete;
  Dnsmasq& operator=(const Dnsmasq&) = delete;

  // The loopback address it listens on (port 53, UDP and TCP).
  const std::string& address() const { return address_; }
  // Rewrites the hosts file and makes dnsmasq read it again (SIGHUP), then
  // waits (bounded) until it answers `name` with `expect_address`.
  absl::Status SetHosts(const std::string& hosts, const std::string& name,
                        const std::string& expect_address);
  std::string Log() const;

 private:
  Dnsmasq() = default;
  std::string dir_;
  std::string address_;
  pid_t pid_ = -1;
};

}  // namespace egress::testing

#endif  // EGRESS_TESTS_TESTING_DNSMASQ_H_
