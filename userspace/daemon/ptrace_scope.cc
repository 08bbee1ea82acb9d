#include "userspace/daemon/ptrace_scope.h"

#include <fstream>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace egress {

std::string PtraceScopeWarning(std::optional<absl::string_view> sysctl_text) {
  std::string setting = "this kernel has no Yama (kernel.yama.ptrace_scope)";
  if (sysctl_text) {
    int value = 0;
    if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(*sysctl_text), &value) ||
        value != 0) {
      return "";
    }
    setting = "kernel.yama.ptrace_scope=0";
  }
  return absl::StrCat(
      setting,
      ": a process of the target may attach to any process of its uid "
      "outside the target and take a socket made there, which no hook of "
      "the target sees; set kernel.yama.ptrace_scope to 1 or more and give "
      "the target a uid of its own (docs/bypasses.md)");
}

std::string PtraceScopeWarningOf(const std::string& path) {
  std::ifstream in(path);
  if (!in) return PtraceScopeWarning(std::nullopt);
  std::stringstream text;
  text << in.rdbuf();
  return PtraceScopeWarning(text.str());
}

}  // namespace egress
