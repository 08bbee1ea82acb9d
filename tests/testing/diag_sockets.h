// Socket identities as sock_diag reports them, for the unit tests of the
// sock_diag codec and of judging connections.
#ifndef EGRESS_TESTS_TESTING_DIAG_SOCKETS_H_
#define EGRESS_TESTS_TESTING_DIAG_SOCKETS_H_

#include <arpa/inet.h>
#include <linux/inet_diag.h>

#include <cstdint>

namespace egress::testing {

// Addresses and ports in network order, the cookie made of the source port.
inline inet_diag_sockid SockId(int family, const char* src, uint16_t sport,
                               const char* dst, uint16_t dport) {
  inet_diag_sockid id{};
  id.idiag_sport = htons(sport);
  id.idiag_dport = htons(dport);
  inet_pton(family, src, id.idiag_src);
  inet_pton(family, dst, id.idiag_dst);
  id.idiag_cookie[0] = sport;
  return id;
}

}  // namespace egress::testing

#endif  // EGRESS_TESTS_TESTING_DIAG_SOCKETS_H_
