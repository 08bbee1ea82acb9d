#include "userspace/policy/resolver.h"

#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstring>
#include <tuple>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace egress::policy {
namespace {

absl::StatusOr<std::vector<Cidr>> Resolve(const std::string& host) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  // One socket type, or every address comes back once per type.
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  const int rc = getaddrinfo(host.c_str(), nullptr, &hints, &res);
  if (rc != 0) {
    const std::string message =
        absl::StrCat("cannot resolve host '", host, "': ", gai_strerror(rc));
    switch (rc) {
      case EAI_NONAME:
#ifdef EAI_NODATA
      case EAI_NODATA:
#endif
#ifdef EAI_ADDRFAMILY
      case EAI_ADDRFAMILY:
#endif
        return absl::NotFoundError(message);
      case EAI_AGAIN:
        return absl::UnavailableError(message);
      default:
        return absl::InternalError(message);
    }
  }
  std::vector<Cidr> out;
  for (const addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
    Cidr c;
    if (ai->ai_family == AF_INET) {
      const auto* sin = reinterpret_cast<const sockaddr_in*>(ai->ai_addr);
      c.family = 4;
      c.prefix_len = 32;
      std::memcpy(c.addr.data(), &sin->sin_addr, 4);
    } else if (ai->ai_family == AF_INET6) {
      const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(ai->ai_addr);
      c.family = 6;
      c.prefix_len = 128;
      std::memcpy(c.addr.data(), &sin6->sin6_addr, 16);
    } else {
      continue;
    }
    out.push_back(c);
  }
  freeaddrinfo(res);
  auto order = [](const Cidr& a, const Cidr& b) {
    return std::tie(a.family, a.addr) < std::tie(b.family, b.addr);
  };
  std::sort(out.begin(), out.end(), order);
  out.erase(std::unique(out.begin(), out.end()), out.end());
  if (out.empty()) {
    return absl::NotFoundError(
        absl::StrCat("cannot resolve host '", host, "': no addresses"));
  }
  return out;
}

}  // namespace

HostResolver SystemResolver() { return Resolve; }

}  // namespace egress::policy
