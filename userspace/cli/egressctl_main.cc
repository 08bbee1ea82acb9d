// egressctl: the operator's CLI. Parses the command line (cli_parse.h, from
// the command table in commands.h), sends one typed request to egressd and
// prints the answer. The exit status comes from exit_status.h.
#include <stdio.h>

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"
#include "userspace/cli/cli_parse.h"
#include "userspace/cli/daemon_call.h"
#include "userspace/cli/exit_status.h"
#include "userspace/cli/export_files.h"
#include "userspace/cli/help_text.h"
#include "userspace/cli/local_text.h"
#include "userspace/cli/man_page.h"
#include "userspace/cli/output.h"
#include "userspace/cli/run_command.h"
#include "userspace/cli/verify_command.h"
#include "userspace/control/control_socket.h"
#include "userspace/control/json_indented.h"
#include "userspace/policy/rule_json.h"

namespace egress::cli {
namespace {

int Fail(const absl::Status& st) {
  fprintf(stderr, "egressctl: %s\n", std::string(st.message()).c_str());
  return ExitCodeFor(st);
}

int Print(const std::string& text) {
  fputs(text.c_str(), stdout);
  return 0;
}

// On stderr, so that stdout keeps only what was asked for (records as
// JSON lines stay parseable).
void Warn(const std::string& warning) {
  fprintf(stderr, "egressctl: warning: %s\n", warning.c_str());
}

int Code(const absl::StatusOr<int>& code) {
  return code.ok() ? *code : Fail(code.status());
}

// `events --follow`: records as egressd renders them, until it closes. The
// stream never ends on its own: when it does, egressd stopped (or
// restarted), and a script watching records must learn that it is no longer
// watching.
int FollowEvents(const ParsedCommand& parsed) {
  absl::Status st = StreamFromDaemon(
      parsed.socket_path, control::EncodeRequest(*parsed.request),
      [](const std::string& line) {
        printf("%s\n", line.c_str());
        fflush(stdout);
        return true;
      },
      Warn, parsed.timeout);
  if (st.ok()) {
    st = absl::UnavailableError(
        "egressd closed the stream (it stopped or restarted): later records "
        "are not shown; run 'egressctl events --follow' again once egressd "
        "is up");
  }
  return Fail(st);
}

int CallAndPrint(const ParsedCommand& parsed) {
  const auto* events = std::get_if<control::EventsRequest>(&*parsed.request);
  if (events != nullptr && events->follow) return FollowEvents(parsed);
  absl::StatusOr<Reply> reply =
      CallEgressd(parsed.socket_path, *parsed.request, parsed.timeout);
  if (!reply.ok()) return Fail(reply.status());
  const auto* exported = std::get_if<control::ExportResponse>(&reply->response);
  if (events != nullptr) {
    const auto& answer = std::get<control::EventsResponse>(reply->response);
    if (!answer.warning.empty()) Warn(answer.warning);
    // Records come rendered in the format asked for (-o json|text).
    return Print(FormatResponse(reply->response));
  }
  if (std::string w = PolicyFileEditWarning(reply->response); !w.empty()) {
    Warn(w);
  }
  // `status` exits non-zero when a target is degraded (the self-check
  // found it not enforced), after printing everything.
  int code = 0;
  if (const auto* status =
          std::get_if<control::StatusResponse>(&reply->response)) {
    for (const control::TargetInfo& t : status->targets) {
      if (!t.degraded.empty()) code = ExitCodeFor(absl::UnavailableError(""));
    }
  }
  if (parsed.output == OutputFormat::kJson) {
    // Printed as it is made: the text of a large `list` is tens of MB.
    const bool written = control::WriteIndentedJson(
        reply->text, "ok", [](absl::string_view piece) {
          fwrite(piece.data(), 1, piece.size(), stdout);
        });
    if (written) {
      int printed = Print("\n");
      return printed != 0 ? printed : code;
    }
    absl::StatusOr<nlohmann::json> json = ParseResponse(reply->text);
    if (!json.ok()) return Fail(json.status());
    json->erase("ok");
    int printed = Print(egress::policy::JsonText(*json, 2) + "\n");
    return printed != 0 ? printed : code;
  }
  if (exported != nullptr) {
    absl::Status st = WriteExport(*exported, parsed.export_dir);
    return st.ok() ? 0 : Fail(st);
  }
  int printed =
      Print(FormatResponse(reply->response, {.verbose = parsed.verbose}));
  return printed != 0 ? printed : code;
}

int Execute(ParsedCommand parsed) {
  switch (parsed.local) {
    case LocalAction::kHelp:
      return Print(TopicHelp(parsed.topic));
    case LocalAction::kVersion:
      return Print(VersionText("egressctl"));
    case LocalAction::kCompletion:
      return Print(BashCompletion());
    case LocalAction::kMan:
      return Print(ManPage());
    case LocalAction::kServices:
      return Print(ServicesText());
    case LocalAction::kRun:
      return Code(RunUnderPolicy(std::move(parsed)));
    case LocalAction::kVerify:
      return Code(RunVerify(parsed));
    case LocalAction::kNone:
      break;
  }
  return CallAndPrint(parsed);
}

}  // namespace
}  // namespace egress::cli

int main(int argc, char** argv) {
  const std::vector<std::string> args(argv + 1, argv + argc);
  auto parsed = egress::cli::ParseCommandLine(args);
  if (!parsed.ok()) return egress::cli::Fail(parsed.status());
  return egress::cli::Execute(*std::move(parsed));
}
