// A resolver the test drives by hand: a UDP socket on port 53 of a loopback
// address, outside every target, that answers exactly what the test says,
// when the test says (forged, mapped or held-back answers). Every wait is
// bounded.
#ifndef EGRESS_TESTS_TESTING_FAKE_RESOLVER_H_
#define EGRESS_TESTS_TESTING_FAKE_RESOLVER_H_

#include <cstdint>
#include <functional>
#include <string>
#include <thread>
#include <vector>

namespace egress::testing {

// A UDP socket bound to addr:53 (IPv4); -1 on failure (errno says why).
int UdpBound53(const std::string& addr);

// Answers the one query that reaches `fd` (a UDP socket bound to port 53)
// within 10 s with answer(the query's id), from a thread the caller joins.
// `answer` runs in that thread before the answer is sent, so it may also
// hold the answer back while the test does something else.
std::thread AnswerOneQuery(
    int fd, std::function<std::vector<uint8_t>(uint16_t id)> answer);

}  // namespace egress::testing

#endif  // EGRESS_TESTS_TESTING_FAKE_RESOLVER_H_
