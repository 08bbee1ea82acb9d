#include "tests/testing/dns_client.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <variant>

#include "tests/testing/dns_builder.h"
#include "tests/testing/socket_probes.h"
#include "userspace/dns/dns_answer.h"

namespace egress::testing {
namespace {

// The addresses of an answer in text form (empty for anything else).
std::vector<std::string> AddressesOf(const uint8_t* data, size_t len) {
  std::vector<std::string> out;
  const dns::DnsOutcome outcome = dns::ParseDnsAnswer({data, len});
  const auto* answer = std::get_if<dns::DnsAnswer>(&outcome);
  if (answer == nullptr) return out;
  for (const dns::DnsAddress& a : answer->addresses) {
    char text[INET6_ADDRSTRLEN] = {};
    const bool v4 = a.bytes.size() == 4;
    inet_ntop(v4 ? AF_INET : AF_INET6, a.bytes.data(), text, sizeof(text));
    out.push_back(text);
  }
  return out;
}

int WaitReadable(int fd, int timeout_ms) {
  pollfd p{fd, POLLIN, 0};
  const int n = poll(&p, 1, timeout_ms);
  if (n < 0) return errno;
  return n == 0 ? ETIMEDOUT : 0;
}

// Reads exactly n bytes from a stream (bounded by the poll timeout).
int ReadFull(int fd, uint8_t* buf, size_t n) {
  size_t got = 0;
  while (got < n) {
    if (int err = WaitReadable(fd, 2000); err != 0) return err;
    const ssize_t r = read(fd, buf + got, n - got);
    if (r < 0) return errno;
    if (r == 0) return ECONNRESET;
    got += static_cast<size_t>(r);
  }
  return 0;
}

sockaddr_in ServerAddr(const std::string& server) {
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(53);
  inet_pton(AF_INET, server.c_str(), &sa.sin_addr);
  return sa;
}

int WriteSmallFile(const std::string& path, const std::string& text) {
  const int fd =
      open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return errno;
  const int rc =
      write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size())
          ? 0
          : EIO;
  close(fd);
  return rc;
}

}  // namespace

std::vector<uint8_t> DnsQueryMessage(const std::string& name, uint16_t qtype,
                                     uint16_t id) {
  return DnsMessageBuilder().Id(id).Flags(0x0100).Question(name, qtype).Build();
}

std::vector<uint8_t> DnsAnswerMessage(const std::string& name,
                                      const std::string& ipv4, uint16_t id,
                                      uint32_t ttl) {
  return DnsMessageBuilder()
      .Id(id)
      .Question(name)
      .Answer(DnsA(name, ipv4, ttl))
      .Build();
}

int DnsUdpSocket(const std::string& server) {
  const int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -errno;
  sockaddr_in local{};
  local.sin_family = AF_INET;
  local.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const sockaddr_in sa = ServerAddr(server);
  if (bind(fd, reinterpret_cast<const sockaddr*>(&local), sizeof(local)) != 0 ||
      connect(fd, reinterpret_cast<const sockaddr*>(&sa), sizeof(sa)) != 0) {
    const int err = errno;
    close(fd);
    return -err;
  }
  return fd;
}

int SendAll(int fd, const std::vector<uint8_t>& msg) {
  const ssize_t n = send(fd, msg.data(), msg.size(), 0);
  if (n < 0) return errno;
  return static_cast<size_t>(n) == msg.size() ? 0 : EIO;
}

DnsQueryResult ReceiveAnswer(int fd, int timeout_ms) {
  DnsQueryResult r;
  if ((r.error = WaitReadable(fd, timeout_ms)) != 0) return r;
  uint8_t buf[4096];
  const ssize_t n = recv(fd, buf, sizeof(buf), 0);
  if (n < 0) {
    r.error = errno;
    return r;
  }
  r.addresses = AddressesOf(buf, static_cast<size_t>(n));
  return r;
}

DnsQueryResult DnsQuery(const std::string& server, const std::string& name,
                        uint16_t qtype, bool tcp, uint16_t id) {
  DnsQueryResult r;
  const std::vector<uint8_t> query = DnsQueryMessage(name, qtype, id);
  if (!tcp) {
    const int fd = DnsUdpSocket(server);
    if (fd < 0) {
      r.error = -fd;
      return r;
    }
    r.error = SendAll(fd, query);
    if (r.error == 0) r = ReceiveAnswer(fd);
    close(fd);
    return r;
  }
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    r.error = errno;
    return r;
  }
  const sockaddr_in sa = ServerAddr(server);
  std::vector<uint8_t> framed = {static_cast<uint8_t>(query.size() >> 8),
                                 static_cast<uint8_t>(query.size() & 0xff)};
  framed.insert(framed.end(), query.begin(), query.end());
  uint8_t len[2];
  std::vector<uint8_t> answer;
  if (connect(fd, reinterpret_cast<const sockaddr*>(&sa), sizeof(sa)) != 0) {
    r.error = errno;
  } else if ((r.error = SendAll(fd, framed)) == 0 &&
             (r.error = ReadFull(fd, len, 2)) == 0) {
    answer.resize((size_t{len[0]} << 8) | len[1]);
    r.error = ReadFull(fd, answer.data(), answer.size());
    if (r.error == 0) r.addresses = AddressesOf(answer.data(), answer.size());
  }
  close(fd);
  return r;
}

int EnterPrivateResolver(const std::string& server) {
  static bool entered = false;
  if (entered) return 0;
  char dir[] = "/tmp/egress-resolv-XXXXXX";
  if (mkdtemp(dir) == nullptr) return errno;
  const std::string resolv = std::string(dir) + "/resolv.conf";
  const std::string nss = std::string(dir) + "/nsswitch.conf";
  int rc = WriteSmallFile(
      resolv, "nameserver " + server + "\noptions attempts:2 timeout:1\n");
  if (rc == 0) rc = WriteSmallFile(nss, "hosts: dns\n");
  if (rc == 0 && unshare(CLONE_NEWNS) != 0) rc = errno;
  if (rc == 0 && mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr))
    rc = errno;
  if (rc == 0 &&
      mount(resolv.c_str(), "/etc/resolv.conf", nullptr, MS_BIND, nullptr))
    rc = errno;
  if (rc == 0 &&
      mount(nss.c_str(), "/etc/nsswitch.conf", nullptr, MS_BIND, nullptr))
    rc = errno;
  // The mounts hold the files; the directory goes now, whatever happened.
  unlink(resolv.c_str());
  unlink(nss.c_str());
  rmdir(dir);
  if (rc == 0) entered = true;
  return rc;
}

DnsQueryResult PrivateGetaddrinfo(const std::string& server,
                                  const std::string& name, uint16_t port) {
  DnsQueryResult r;
  if ((r.error = EnterPrivateResolver(server)) != 0) return r;
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  const std::string service = port != 0 ? std::to_string(port) : "";
  const int rc = getaddrinfo(
      name.c_str(), service.empty() ? nullptr : service.c_str(), &hints, &res);
  if (rc != 0) {
    r.error = rc == EAI_SYSTEM ? errno : 1000 - rc;
    return r;
  }
  for (const addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
    char text[INET6_ADDRSTRLEN] = {};
    const void* a =
        ai->ai_family == AF_INET
            ? static_cast<const void*>(
                  &reinterpret_cast<const sockaddr_in*>(ai->ai_addr)->sin_addr)
            : static_cast<const void*>(
                  &reinterpret_cast<const sockaddr_in6*>(ai->ai_addr)
                       ->sin6_addr);
    inet_ntop(ai->ai_family, a, text, sizeof(text));
    r.addresses.push_back(text);
  }
  freeaddrinfo(res);
  return r;
}

int LookupAndConnect(const std::string& server, const std::string& name,
                     uint16_t port) {
  const DnsQueryResult r = PrivateGetaddrinfo(server, name);
  if (r.error != 0) return 1000 + r.error;
  for (const std::string& a : r.addresses) {
    if (a.find(':') == std::string::npos) return TcpConnect(a, port);
  }
  return 1000 + ENOENT;
}

}  // namespace egress::testing
