// Hand-built DNS queries for the name-rule tests, to a server the test
// started (never the machine's resolver): the test decides the transport
// (UDP or TCP), the transaction id and the socket, and can forge answers.
// Every wait is bounded (kProbeTimeout). Safe to call in a forked child
// (RunInCgroup): plain syscalls and the pure reference parser.
#ifndef EGRESS_TESTS_TESTING_DNS_CLIENT_H_
#define EGRESS_TESTS_TESTING_DNS_CLIENT_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace egress::testing {

inline constexpr uint16_t kDnsTypeA = 1;
inline constexpr uint16_t kDnsTypeAaaa = 28;

struct DnsQueryResult {
  int error = 0;                       // errno of the first failing step
  std::vector<std::string> addresses;  // of the answer, in text form
};

// Asks `server`:53 for `name` (type qtype) over UDP or TCP from a fresh
// socket and returns the answer's addresses (reference parser).
DnsQueryResult DnsQuery(const std::string& server, const std::string& name,
                        uint16_t qtype = kDnsTypeA, bool tcp = false,
                        uint16_t id = 0x4242);

// A query message (RD set) for `name`.
std::vector<uint8_t> DnsQueryMessage(const std::string& name, uint16_t qtype,
                                     uint16_t id);
// An answer to `name` binding `ipv4` (one A record, TTL ttl).
std::vector<uint8_t> DnsAnswerMessage(const std::string& name,
                                      const std::string& ipv4, uint16_t id,
                                      uint32_t ttl = 300);

// A UDP socket bound to 127.0.0.1 (ephemeral port) and connected to
// server:53; -errno on failure.
int DnsUdpSocket(const std::string& server);
// Sends `msg` on a connected socket; errno or 0.
int SendAll(int fd, const std::vector<uint8_t>& msg);
// Waits up to `timeout_ms` for one datagram and returns its addresses
// (reference parser), or the error (ETIMEDOUT when none came).
DnsQueryResult ReceiveAnswer(int fd, int timeout_ms = 2000);

// getaddrinfo(name) in a private mount namespace whose /etc/resolv.conf
// names only `server` and whose /etc/nsswitch.conf says "hosts: dns", so the
// lookup cannot reach the machine's resolver. Call in a forked child only
// (it unshares the child's mount namespace). Returns the IPv4 and IPv6
// addresses, or the EAI/errno code in error. A `port` other than 0 is
// passed as the service, as an application asking for "name:port" does.
DnsQueryResult PrivateGetaddrinfo(const std::string& server,
                                  const std::string& name, uint16_t port = 0);
// Sets up that mount namespace once for the calling (child) process; 0 or
// errno. PrivateGetaddrinfo calls it on first use.
int EnterPrivateResolver(const std::string& server);

// What an application does: PrivateGetaddrinfo(server, name), then a TCP
// connect to the first IPv4 address of the answer on `port`. The connect's
// errno (0 = connected), or 1000 + the lookup's error (1000 + ENOENT: no
// IPv4 address). In a forked child only, as PrivateGetaddrinfo.
int LookupAndConnect(const std::string& server, const std::string& name,
                     uint16_t port);

}  // namespace egress::testing

#endif  // EGRESS_TESTS_TESTING_DNS_CLIENT_H_
