#include "userspace/policy/services.h"

#include <netdb.h>
#include <netinet/in.h>

#include <algorithm>
#include <array>
#include <optional>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace egress::policy {
namespace {

struct Alias {
  absl::string_view name;
  absl::string_view target;
};
constexpr Alias kAliases[] = {
    {"dns", "domain"},
    {"smtps", "submissions"},
    {"postgres", "postgresql"},
};

struct FallbackService {
  absl::string_view name;
  uint16_t port;
  bool tcp;
  bool udp;
};
constexpr FallbackService kFallback[] = {
    {"smtp", 25, true, false},         {"domain", 53, true, true},
    {"http", 80, true, false},         {"https", 443, true, true},
    {"submission", 587, true, false},  {"submissions", 465, true, false},
    {"postgresql", 5432, true, false}, {"mysql", 3306, true, false},
    {"redis", 6379, true, false},      {"ntp", 123, false, true},
    {"ldap", 389, true, true},         {"ssh", 22, true, false},
    {"imap", 143, true, false},        {"imaps", 993, true, false},
    {"pop3", 110, true, false},        {"pop3s", 995, true, false},
    {"syslog", 514, false, true},      {"memcached", 11211, true, false},
};

std::optional<uint16_t> SystemLookup(const std::string& name,
                                     const char* proto) {
  servent entry;
  servent* result = nullptr;
  std::array<char, 4096> buf;
  if (getservbyname_r(name.c_str(), proto, &entry, buf.data(), buf.size(),
                      &result) != 0 ||
      result == nullptr) {
    return std::nullopt;
  }
  return ntohs(static_cast<uint16_t>(result->s_port));
}

}  // namespace

int EditDistance(absl::string_view a, absl::string_view b) {
  const size_t n = a.size(), m = b.size();
  std::vector<std::vector<int>> d(n + 1, std::vector<int>(m + 1));
  for (size_t i = 0; i <= n; ++i) d[i][0] = static_cast<int>(i);
  for (size_t j = 0; j <= m; ++j) d[0][j] = static_cast<int>(j);
  for (size_t i = 1; i <= n; ++i) {
    for (size_t j = 1; j <= m; ++j) {
      const int cost = a[i - 1] == b[j - 1] ? 0 : 1;
      d[i][j] =
          std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) {
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[n][m];
}

std::vector<std::string> KnownServiceNames() {
  std::vector<std::string> names;
  for (const FallbackService& s : kFallback) names.emplace_back(s.name);
  for (const Alias& a : kAliases) names.emplace_back(a.name);
  std::sort(names.begin(), names.end());
  return names;
}

absl::StatusOr<std::vector<PortProto>> LookupService(absl::string_view name) {
  std::string canonical(name);
  for (const Alias& a : kAliases) {
    if (name == a.name) canonical = std::string(a.target);
  }
  std::vector<PortProto> ports;
  if (!canonical.empty()) {
    if (auto tcp = SystemLookup(canonical, "tcp")) {
      ports.push_back({Proto::kTcp, *tcp, *tcp});
    }
    if (auto udp = SystemLookup(canonical, "udp")) {
      ports.push_back({Proto::kUdp, *udp, *udp});
    }
  }
  if (!ports.empty()) return ports;
  for (const FallbackService& s : kFallback) {
    if (canonical != s.name) continue;
    if (s.tcp) ports.push_back({Proto::kTcp, s.port, s.port});
    if (s.udp) ports.push_back({Proto::kUdp, s.port, s.port});
    return ports;
  }
  std::string message = absl::StrCat("unknown service '", name, "'");
  // Closest known name; ties go to the alphabetically first.
  int best = 3;
  std::string suggestion;
  for (const std::string& known : KnownServiceNames()) {
    const int dist = EditDistance(name, known);
    if (dist < best) {
      best = dist;
      suggestion = known;
    }
  }
  if (!suggestion.empty()) {
    absl::StrAppend(&message, "; did you mean '", suggestion, "'?");
  }
  return absl::InvalidArgumentError(message);
}

}  // namespace egress::policy
