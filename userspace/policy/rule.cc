#include "userspace/policy/rule.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <cstring>
#include <optional>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "userspace/policy/word_table.h"

namespace egress::policy {
namespace {

bool PrefixEqual(const std::array<uint8_t, 16>& a,
                 const std::array<uint8_t, 16>& b, int prefix_len) {
  return MaskedAddress(a, prefix_len) == MaskedAddress(b, prefix_len);
}

constexpr WordOf<Proto> kProtos[] = {
    {Proto::kTcp, "tcp"}, {Proto::kUdp, "udp"},   {Proto::kIcmp, "icmp"},
    {Proto::kRaw, "raw"}, {Proto::kUnix, "unix"},
};

constexpr std::array<uint8_t, 12> kMappedPrefix = {0, 0, 0, 0, 0,    0,
                                                   0, 0, 0, 0, 0xff, 0xff};

}  // namespace

std::array<uint8_t, 16> MaskedAddress(const std::array<uint8_t, 16>& addr,
                                      int prefix_len) {
  std::array<uint8_t, 16> out{};
  for (int i = 0; i < 16; ++i) {
    const int keep = std::clamp(prefix_len - 8 * i, 0, 8);
    out[i] = addr[i] & static_cast<uint8_t>(0xff00 >> keep);
  }
  return out;
}

bool IsV4Mapped(const std::array<uint8_t, 16>& addr) {
  return std::memcmp(addr.data(), kMappedPrefix.data(), 12) == 0;
}

std::string ActionName(Action action) {
  return action == Action::kAllow ? "allow" : "deny";
}

std::string ProtoName(Proto proto) { return WordFor(kProtos, proto); }

absl::StatusOr<Proto> ParseProtoName(absl::string_view name) {
  if (std::optional<Proto> p = ValueOf(kProtos, name)) return *p;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown protocol '", name, "'"));
}

absl::StatusOr<Cidr> Cidr::Parse(absl::string_view text) {
  absl::string_view addr_text = text;
  absl::string_view len_text;
  const size_t slash = text.find('/');
  const bool has_len = slash != absl::string_view::npos;
  if (has_len) {
    addr_text = text.substr(0, slash);
    len_text = text.substr(slash + 1);
  }
  // inet_pton needs a NUL-terminated string.
  const std::string addr_str(addr_text);
  Cidr c;
  int max_len;
  std::array<uint8_t, 16> v6{};
  if (inet_pton(AF_INET, addr_str.c_str(), c.addr.data()) == 1) {
    c.family = 4;
    max_len = 32;
  } else if (inet_pton(AF_INET6, addr_str.c_str(), v6.data()) == 1) {
    c.family = 6;
    c.addr = v6;
    max_len = 128;
  } else {
    return absl::InvalidArgumentError(absl::StrCat("bad address '", text, "'"));
  }
  int len = max_len;
  if (has_len) {
    // SimpleAtoi accepts signs and spaces; a prefix length is digits only.
    if (len_text.empty() || len_text.size() > 3 ||
        len_text.find_first_not_of("0123456789") != absl::string_view::npos ||
        !absl::SimpleAtoi(len_text, &len) || len > max_len) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "bad prefix length in '%s': must be 0-%d", text, max_len));
    }
  }
  c.prefix_len = static_cast<uint8_t>(len);
  const std::array<uint8_t, 16> masked = MaskedAddress(c.addr, len);
  if (masked != c.addr) {
    // Suggest in the notation the operator used, with the prefix spelled out.
    char buf[INET6_ADDRSTRLEN];
    inet_ntop(c.family == 4 ? AF_INET : AF_INET6, masked.data(), buf,
              sizeof(buf));
    return absl::InvalidArgumentError(absl::StrFormat(
        "%s: host bits set; did you mean %s/%d?", text, buf, len));
  }
  if (c.family == 6 && len >= 96 && IsV4Mapped(c.addr)) {
    Cidr v4;
    v4.family = 4;
    std::memcpy(v4.addr.data(), c.addr.data() + 12, 4);
    v4.prefix_len = static_cast<uint8_t>(len - 96);
    return v4;
  }
  return c;
}

Cidr Cidr::AnyV4() { return Cidr{.family = 4, .addr = {}, .prefix_len = 0}; }
Cidr Cidr::AnyV6() { return Cidr{.family = 6, .addr = {}, .prefix_len = 0}; }

std::string Cidr::ToString() const {
  if (family == 4) {
    // glibc's inet_ntop formats IPv4 with sprintf: a policy of 100,000
    // addresses is written out several times per apply (request text, diff
    // lines, state rows).
    std::string text =
        absl::StrCat(addr[0], ".", addr[1], ".", addr[2], ".", addr[3]);
    if (prefix_len != 32) absl::StrAppend(&text, "/", prefix_len);
    return text;
  }
  char buf[INET6_ADDRSTRLEN];
  inet_ntop(AF_INET6, addr.data(), buf, sizeof(buf));
  if (prefix_len == 128) return buf;
  return absl::StrCat(buf, "/", prefix_len);
}

bool Cidr::Valid() const {
  if (family == 4) {
    for (int i = 4; i < 16; ++i) {
      if (addr[i] != 0) return false;
    }
    return prefix_len <= 32 && MaskedAddress(addr, prefix_len) == addr;
  }
  return family == 6 && prefix_len <= 128 &&
         MaskedAddress(addr, prefix_len) == addr;
}

bool Cidr::Contains(const Cidr& other) const {
  return family == other.family && prefix_len <= other.prefix_len &&
         PrefixEqual(addr, other.addr, prefix_len);
}

bool Cidr::ContainsAddress(uint8_t addr_family,
                           const std::array<uint8_t, 16>& a) const {
  return family == addr_family && PrefixEqual(addr, a, prefix_len);
}

bool RuleMatches(const Rule& rule, uint8_t ip_proto, uint16_t port,
                 uint8_t family, const std::array<uint8_t, 16>& addr) {
  bool proto_match = false;
  for (const PortProto& pp : rule.ports) {
    switch (pp.proto) {
      case Proto::kTcp:
      case Proto::kUdp:
        proto_match =
            ip_proto == (pp.proto == Proto::kTcp ? IPPROTO_TCP : IPPROTO_UDP) &&
            port >= pp.lo && port <= pp.hi;
        break;
      case Proto::kIcmp:
        proto_match = (family == 4 && ip_proto == IPPROTO_ICMP) ||
                      (family == 6 && ip_proto == IPPROTO_ICMPV6);
        break;
      case Proto::kRaw:
      case Proto::kUnix:
        break;
    }
    if (proto_match) break;
  }
  if (!proto_match) return false;
  if (rule.Anywhere()) return family == 4 || family == 6;
  for (const Cidr& d : rule.destinations) {
    if (d.ContainsAddress(family, addr)) return true;
  }
  return false;
}

}  // namespace egress::policy
