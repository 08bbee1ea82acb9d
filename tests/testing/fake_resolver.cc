#include "tests/testing/fake_resolver.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <utility>

namespace egress::testing {

int UdpBound53(const std::string& addr) {
  const int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(53);
  inet_pton(AF_INET, addr.c_str(), &a.sin_addr);
  if (s >= 0 && bind(s, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0) {
    return s;
  }
  if (s >= 0) close(s);
  return -1;
}

std::thread AnswerOneQuery(
    int fd, std::function<std::vector<uint8_t>(uint16_t id)> answer) {
  return std::thread([fd, answer = std::move(answer)] {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 10000) != 1) return;
    uint8_t buf[512];
    sockaddr_in from{};
    socklen_t len = sizeof(from);
    const ssize_t n = recvfrom(fd, buf, sizeof(buf), 0,
                               reinterpret_cast<sockaddr*>(&from), &len);
    if (n < 12) return;
    const std::vector<uint8_t> a =
        answer(static_cast<uint16_t>(buf[0] << 8 | buf[1]));
    sendto(fd, a.data(), a.size(), 0, reinterpret_cast<sockaddr*>(&from), len);
  });
}

}  // namespace egress::testing
