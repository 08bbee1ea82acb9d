// Fuzz target: one control message, as egressd reads it from its socket (a
// line of JSON text, parsed without exceptions, an object) -> DecodeRequest.
// Invariants: decoding never throws or crashes, every error is
// InvalidArgument, and a decoded request re-encodes to a message that decodes
// to the same request (its encoding is a fixed point), so what egressd acts
// on is what the message said.
#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "tests/fuzz/targets/fuzz_check.h"
#include "userspace/control/protocol.h"
#include "userspace/policy/rule_json.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using egress::control::DecodeRequest;
  using egress::control::EncodeRequest;
  using egress::control::Request;
  const std::string line(reinterpret_cast<const char*>(data), size);
  nlohmann::json message =
      nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (message.is_discarded() || !message.is_object()) return 0;
  absl::StatusOr<Request> request = DecodeRequest(message);
  if (!request.ok()) {
    FUZZ_CHECK(absl::IsInvalidArgument(request.status()),
               request.status().ToString());
    return 0;
  }
  const nlohmann::json encoded = EncodeRequest(*request);
  const std::string text = egress::policy::JsonText(encoded);
  absl::StatusOr<nlohmann::json> wire = egress::policy::ParseJson(text);
  FUZZ_CHECK(wire.ok(), text);
  absl::StatusOr<Request> again = DecodeRequest(*wire);
  FUZZ_CHECK(again.ok(), absl::StrCat(again.status().ToString(), "\n", text));
  FUZZ_CHECK(egress::control::CommandOf(*again) ==
                 egress::control::CommandOf(*request),
             text);
  FUZZ_CHECK(EncodeRequest(*again) == encoded,
             absl::StrCat(text, "\nbecame\n",
                          egress::policy::JsonText(EncodeRequest(*again))));
  return 0;
}
