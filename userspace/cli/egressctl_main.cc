// egressctl: the operator's CLI. Parses the command line (cli_parse.h), sends
// one request to egressd and prints the answer. Exit status: 0 done, 2 bad
// input, 1 anything else.
#include <stdio.h>

#include <string>
#include <vector>

#include "absl/time/time.h"
#include "egress/abi.h"
#include "userspace/cli/cli_parse.h"
#include "userspace/cli/export_files.h"
#include "userspace/cli/output.h"
#include "userspace/cli/run_command.h"
#include "userspace/cli/verify_command.h"
#include "userspace/control/control_socket.h"
#include "userspace/policy/resolver.h"

namespace {

int ExitCodeFor(const absl::Status& st) {
  switch (st.code()) {
    case absl::StatusCode::kOk:
      return 0;
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kNotFound:
    case absl::StatusCode::kAlreadyExists:
      return 2;
    default:
      return 1;
  }
}

int Fail(const absl::Status& st) {
  fprintf(stderr, "egressctl: %s\n", std::string(st.message()).c_str());
  return ExitCodeFor(st);
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  auto parsed =
      egress::cli::ParseCommandLine(args, egress::policy::SystemResolver());
  if (!parsed.ok()) return Fail(parsed.status());
  if (parsed->cmd == "help") {
    fputs(egress::cli::UsageText().c_str(), stdout);
    return 0;
  }
  if (parsed->cmd == "version") {
    printf("egressctl 0.1.0 (ABI %d)\n", EGRESS_ABI_VERSION);
    return 0;
  }
  if (parsed->cmd == "run") {
    auto code = egress::cli::RunUnderPolicy(*std::move(parsed));
    if (!code.ok()) return Fail(code.status());
    return *code;
  }
  if (parsed->cmd == "verify") {
    auto code = egress::cli::RunVerify(*parsed);
    if (!code.ok()) return Fail(code.status());
    return *code;
  }
  if (parsed->cmd == "events") {
    // egressd renders the records in the asked format: lines are printed as
    // they come.
    parsed->request["format"] =
        parsed->output == egress::cli::OutputFormat::kJson ? "json" : "text";
    auto print = [](const std::string& line) {
      fwrite(line.data(), 1, line.size(), stdout);
      fputc('\n', stdout);
      fflush(stdout);
      return true;
    };
    if (parsed->request.value("follow", false)) {
      absl::Status st =
          egress::StreamFromDaemon(parsed->socket_path, parsed->request, print);
      if (!st.ok()) return Fail(st);
      return 0;
    }
    auto resp = egress::CallDaemon(parsed->socket_path, parsed->request,
                                   absl::Seconds(30));
    if (!resp.ok()) return Fail(resp.status());
    if (absl::Status st = egress::ResponseStatus(*resp); !st.ok())
      return Fail(st);
    for (const auto& line : resp->value("lines", nlohmann::json::array())) {
      if (line.is_string()) print(line.get<std::string>());
    }
    return 0;
  }
  auto resp = egress::CallDaemon(parsed->socket_path, parsed->request,
                                 absl::Seconds(120));
  if (!resp.ok()) return Fail(resp.status());
  if (absl::Status st = egress::ResponseStatus(*resp); !st.ok())
    return Fail(st);
  if (parsed->cmd == "export" &&
      parsed->output == egress::cli::OutputFormat::kText) {
    absl::Status st = egress::cli::WriteExport(*resp, parsed->export_dir);
    if (!st.ok()) return Fail(st);
    return 0;
  }
  if (parsed->output == egress::cli::OutputFormat::kJson) {
    nlohmann::json out = *resp;
    out.erase("ok");
    printf("%s\n", out.dump(2).c_str());
  } else {
    fputs(egress::cli::FormatResponse(parsed->cmd, *resp).c_str(), stdout);
  }
  return 0;
}
