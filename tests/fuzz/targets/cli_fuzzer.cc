// Fuzz target: egressctl's command line -> ParseCommandLine, the parser of
// egressctl_main.cc, including the rule grammar of policy/spec.cc (allow,
// deny, delete). The input is the argument list, one word per line ("\n";
// a word can hold any other byte). Invariants:
//   - nothing is resolved: names are rules (libc's resolver aborts here:
//     no_name_lookup.cc);
//   - every error is InvalidArgument (egressctl exits 2);
//   - every request egressctl would send survives the wire: encoded, written
//     as JSON text, parsed and decoded as egressd does, it encodes the same.
// `apply -f FILE` reads FILE: inputs naming a file are skipped, so the target
// never reads the fuzzing machine's files (the policy target covers the
// policy parser).
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "nlohmann/json.hpp"
#include "tests/fuzz/targets/fuzz_check.h"
#include "userspace/cli/cli_parse.h"
#include "userspace/control/protocol.h"
#include "userspace/policy/rule_json.h"

namespace egress::cli {
namespace {

bool NamesAFile(const std::vector<std::string>& args) {
  for (const std::string& a : args) {
    if (a == "--") return false;  // the command of `run`, never read
    if (a == "-f" || absl::StartsWith(a, "-f=") ||
        absl::StartsWith(a, "--file")) {
      return true;
    }
  }
  return false;
}

void CheckWire(const control::Request& request) {
  const nlohmann::json sent = control::EncodeRequest(request);
  const std::string text = policy::JsonText(sent);
  absl::StatusOr<nlohmann::json> wire = policy::ParseJson(text);
  FUZZ_CHECK(wire.ok(), text);
  absl::StatusOr<control::Request> back = control::DecodeRequest(*wire);
  FUZZ_CHECK(back.ok(), absl::StrCat(back.status().ToString(), "\n", text));
  FUZZ_CHECK(control::EncodeRequest(*back) == sent, text);
}

}  // namespace
}  // namespace egress::cli

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<std::string> args = absl::StrSplit(
      absl::string_view(reinterpret_cast<const char*>(data), size), '\n');
  for (std::string& a : args) a.resize(std::strlen(a.c_str()));  // argv
  if (egress::cli::NamesAFile(args)) return -1;  // not kept in the corpus
  absl::StatusOr<egress::cli::ParsedCommand> parsed =
      egress::cli::ParseCommandLine(args);
  if (!parsed.ok()) {
    FUZZ_CHECK(absl::IsInvalidArgument(parsed.status()),
               parsed.status().ToString());
    return 0;
  }
  if (parsed->request) egress::cli::CheckWire(*parsed->request);
  return 0;
}
