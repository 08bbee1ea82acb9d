#include "userspace/daemon/node_name.h"

#include <unistd.h>

#include <algorithm>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace egress {
namespace {

absl::Status CheckNodeName(absl::string_view name, absl::string_view origin) {
  const bool printable = std::all_of(
      name.begin(), name.end(), [](char c) { return c > ' ' && c < 0x7f; });
  if (name.size() > 253 || !printable) {
    return absl::InvalidArgumentError(absl::StrCat(
        origin, " \"", absl::CEscape(name.substr(0, 64)),
        "\": a node name is 1-253 printable ASCII characters without spaces"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::string> ChooseNodeName(absl::string_view flag,
                                           const char* env,
                                           absl::string_view host) {
  if (!flag.empty()) {
    if (absl::Status st = CheckNodeName(flag, "--node_name"); !st.ok()) {
      return st;
    }
    return std::string(flag);
  }
  if (env != nullptr && env[0] != '\0') {
    if (absl::Status st = CheckNodeName(env, "NODE_NAME"); !st.ok()) return st;
    return std::string(env);
  }
  return std::string(host);
}

std::string HostName() {
  char host[256] = {};
  if (gethostname(host, sizeof(host) - 1) != 0) return "";
  return host;
}

}  // namespace egress
