#include "userspace/daemon/nonlocal_bind.h"

#include <fstream>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace egress {

std::string NonlocalBindWarning(absl::string_view sysctl_text) {
  int value = 0;
  if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(sysctl_text), &value) ||
      value == 0) {
    return "";
  }
  return absl::StrCat(
      "net.ipv6.ip_nonlocal_bind=", value,
      " on this host: any IPv6 socket of the target can send from an address "
      "the host does not own and pose as a UDP peer or a DNS answer of "
      "another of its sockets, with no socket option egress could refuse; "
      "set it to 0 (docs/bypasses.md)");
}

std::string NonlocalBindWarningOf(const std::string& path) {
  std::ifstream in(path);
  if (!in) return "";
  std::stringstream text;
  text << in.rdbuf();
  return NonlocalBindWarning(text.str());
}

}  // namespace egress
