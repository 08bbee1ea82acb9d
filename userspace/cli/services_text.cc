#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "userspace/cli/local_text.h"
#include "userspace/policy/services.h"

namespace egress::cli {

std::string ServicesText() {
  std::string out = absl::StrFormat("%-14s %s\n", "SERVICE", "PORTS");
  for (const std::string& name : policy::KnownServiceNames()) {
    absl::StatusOr<std::vector<policy::PortProto>> ports =
        policy::LookupService(name);
    if (!ports.ok()) continue;
    std::vector<std::string> text;
    for (const policy::PortProto& p : *ports) {
      text.push_back(absl::StrCat(p.lo, "/", policy::ProtoName(p.proto)));
    }
    absl::StrAppend(
        &out, absl::StrFormat("%-14s %s\n", name, absl::StrJoin(text, ", ")));
  }
  absl::StrAppend(&out,
                  "\nOther names of /etc/services work too (getservbyname).\n");
  return out;
}

}  // namespace egress::cli
