#include "userspace/cli/run_restrictions.h"

#include <sys/socket.h>

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "userspace/policy/services.h"

namespace egress::cli {
namespace {

// Numbers from include/linux/socket.h (glibc lacks the newest names).
constexpr SocketFamily kFamilies[] = {
    {1, "unix"},      {2, "inet"},      {3, "ax25"},       {4, "ipx"},
    {5, "appletalk"}, {6, "netrom"},    {7, "bridge"},     {8, "atmpvc"},
    {9, "x25"},       {10, "inet6"},    {11, "rose"},      {12, "decnet"},
    {13, "netbeui"},  {14, "security"}, {15, "key"},       {16, "netlink"},
    {17, "packet"},   {18, "ash"},      {19, "econet"},    {20, "atmsvc"},
    {21, "rds"},      {22, "sna"},      {23, "irda"},      {24, "pppox"},
    {25, "wanpipe"},  {26, "llc"},      {27, "ib"},        {28, "mpls"},
    {29, "can"},      {30, "tipc"},     {31, "bluetooth"}, {32, "iucv"},
    {33, "rxrpc"},    {34, "isdn"},     {35, "phonet"},    {36, "ieee802154"},
    {37, "caif"},     {38, "alg"},      {39, "nfc"},       {40, "vsock"},
    {41, "kcm"},      {42, "qipcrtr"},  {43, "smc"},       {44, "xdp"},
    {45, "mctp"},
};
static_assert(AF_UNIX == 1 && AF_INET == 2 && AF_INET6 == 10 &&
              AF_NETLINK == 16 && AF_PACKET == 17 && AF_VSOCK == 40);

const SocketFamily* ByName(absl::string_view name) {
  for (const SocketFamily& f : kFamilies) {
    if (f.name == name) return &f;
  }
  return nullptr;
}

const SocketFamily* ByNumber(int number) {
  for (const SocketFamily& f : kFamilies) {
    if (f.number == number) return &f;
  }
  return nullptr;
}

std::string Closest(absl::string_view word) {
  for (const SocketFamily& f : kFamilies) {
    if (policy::EditDistance(word, f.name) <= 2) {
      return absl::StrCat("; did you mean '", f.name, "'?");
    }
  }
  return "";
}

}  // namespace

absl::Span<const SocketFamily> KnownFamilies() { return kFamilies; }

absl::StatusOr<int> ParseFamily(absl::string_view word) {
  std::string name = absl::AsciiStrToLower(word);
  absl::string_view bare = name;
  if (!absl::ConsumePrefix(&bare, "af_")) absl::ConsumePrefix(&bare, "pf_");
  if (bare == "local") bare = "unix";
  if (const SocketFamily* f = ByName(bare)) return f->number;
  return absl::InvalidArgumentError(absl::StrCat(
      "unknown socket family '", word, "'", Closest(bare),
      " (families: unix, inet, inet6, netlink, packet, vsock, xdp, ...)"));
}

std::string FamilyName(int family) {
  const SocketFamily* f = ByNumber(family);
  if (f == nullptr) return absl::StrCat("family ", family);
  return absl::StrCat("AF_", absl::AsciiStrToUpper(f->name));
}

std::string FamilyShortName(int family) {
  const SocketFamily* f = ByNumber(family);
  return f == nullptr ? absl::StrCat(family) : std::string(f->name);
}

std::vector<int> DefaultFamilies() {
  return {AF_UNIX, AF_INET, AF_INET6, AF_NETLINK};
}

bool RunRestrictions::FamilyAllowed(int family) const {
  return any_family || std::binary_search(allowed_families.begin(),
                                          allowed_families.end(), family);
}

absl::StatusOr<RunRestrictions> MakeRunRestrictions(
    const std::vector<std::string>& allow_family_values, bool any_family,
    bool allow_userns, bool allow_io_uring) {
  if (any_family && !allow_family_values.empty()) {
    return absl::InvalidArgumentError(
        "--allow-family and --any-family exclude each other: --any-family "
        "already allows every family");
  }
  RunRestrictions r;
  r.any_family = any_family;
  r.allow_userns = allow_userns;
  r.allow_io_uring = allow_io_uring;
  r.allowed_families = DefaultFamilies();
  for (const std::string& value : allow_family_values) {
    for (absl::string_view word :
         absl::StrSplit(value, ',', absl::SkipWhitespace())) {
      absl::StatusOr<int> family =
          ParseFamily(absl::StripAsciiWhitespace(word));
      if (!family.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat("--allow-family: ", family.status().message()));
      }
      r.allowed_families.push_back(*family);
    }
  }
  std::sort(r.allowed_families.begin(), r.allowed_families.end());
  r.allowed_families.erase(
      std::unique(r.allowed_families.begin(), r.allowed_families.end()),
      r.allowed_families.end());
  return r;
}

RefusedFamilies RefusedFamilyValues(const RunRestrictions& r) {
  RefusedFamilies out;
  if (r.allowed_families.empty()) return out;
  out.lowest = static_cast<uint64_t>(r.allowed_families.front());
  out.highest = static_cast<uint64_t>(r.allowed_families.back());
  for (int f = r.allowed_families.front() + 1; f < r.allowed_families.back();
       ++f) {
    if (!r.FamilyAllowed(f)) out.between.push_back(static_cast<uint64_t>(f));
  }
  return out;
}

std::string RefusalLine(RefusedCall what, absl::string_view call, int family,
                        pid_t pid, absl::string_view comm) {
  const std::string who = absl::StrCat(" by pid ", pid, " (", comm, "): ");
  switch (what) {
    case RefusedCall::kFamily:
      return absl::StrCat(
          "egressctl run: refused ", call, "(", FamilyName(family), ")", who,
          "family not allowed; ",
          ByNumber(family) != nullptr
              ? absl::StrCat("--allow-family ", FamilyShortName(family))
              : std::string("--any-family"),
          " allows it");
    case RefusedCall::kUserNamespace:
      return absl::StrCat("egressctl run: refused ", call, "(CLONE_NEWUSER)",
                          who,
                          "new user namespaces are not allowed; "
                          "--allow-userns allows it");
    case RefusedCall::kIoUring:
      return absl::StrCat("egressctl run: refused ", call, who,
                          "io_uring can create sockets of any family; "
                          "--allow-io-uring allows it");
  }
  return "";
}

}  // namespace egress::cli
