// egress_decode_bench: what egressd spends on a request line before it runs
// it, for one `apply` of 100,000 rules (issue 13): the old way (the line
// parsed into nlohmann::json's tree, decoded, the tree freed) against
// DecodeRequestLine (simdjson's DOM, the same decoder). No root, no egressd.
// See bench/README.md.
#include <stdio.h>
#include <stdlib.h>

#include <algorithm>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "tests/testing/address_rule.h"
#include "userspace/control/control_socket.h"
#include "userspace/control/protocol.h"

namespace egress {
namespace {

// The rules of the policy file: one address and one TCP port each.
control::Request BigApply(int rules) {
  control::TargetSpec spec;
  spec.name = "big";
  spec.source = policy::TargetSource::kCgroup;
  spec.source_value = "/egress-big";
  spec.file = "/tmp/big.yaml";
  for (int i = 0; i < rules; ++i) {
    spec.rules.push_back(
        testing::AddressRule(0, static_cast<uint32_t>(i), 1024, 60000));
  }
  return control::ApplyRequest{false, {std::move(spec)}};
}

// Milliseconds of `fn` (which must succeed), the median of `reps` runs.
template <typename Fn>
double MedianMs(int reps, Fn fn) {
  std::vector<double> ms;
  for (int i = 0; i < reps; ++i) {
    const absl::Time start = absl::Now();
    if (!fn()) {
      fprintf(stderr, "egress_decode_bench: decoding failed\n");
      exit(1);
    }
    ms.push_back(absl::ToDoubleMilliseconds(absl::Now() - start));
  }
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

int Main() {
  constexpr int kRules = 100000;
  constexpr int kReps = 5;
  const std::string line = control::RequestText(BigApply(kRules));
  const double tree = MedianMs(kReps, [&] {
    absl::StatusOr<nlohmann::json> message = ParseRequest(line);
    if (!message.ok()) return false;
    absl::StatusOr<control::Request> request = control::DecodeRequest(*message);
    *message = nlohmann::json();  // freed before the request, as egressd did
    return request.ok();
  });
  const double dom =
      MedianMs(kReps, [&] { return DecodeRequestLine(line).ok(); });
  printf("apply of %d rules, a line of %.1f MB, median of %d runs:\n", kRules,
         static_cast<double>(line.size()) / 1e6, kReps);
  printf("  nlohmann::json tree: parse + decode + free  %8.1f ms\n", tree);
  printf("  DecodeRequestLine (simdjson DOM)            %8.1f ms\n", dom);
  return 0;
}

}  // namespace
}  // namespace egress

int main() { return egress::Main(); }
