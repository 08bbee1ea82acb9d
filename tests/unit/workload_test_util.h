// What the container and pod unit tests share: a policy file around a
// target, the error a bad target gets, and a refused TCP connect's record.
#ifndef EGRESS_TESTS_UNIT_WORKLOAD_TEST_UTIL_H_
#define EGRESS_TESTS_UNIT_WORKLOAD_TEST_UTIL_H_

#include <arpa/inet.h>
#include <netinet/in.h>

#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "userspace/events/event_record.h"
#include "userspace/policy/policy_file.h"

namespace egress::testing {

// A policy file "web.yaml" whose spec.target is `target` (indented by 4).
inline std::string PolicyWithTarget(const std::string& target) {
  return absl::StrCat(
      "apiVersion: egress.dev/v1alpha1\nkind: EgressPolicy\nmetadata:\n"
      "  name: web\nspec:\n  target:\n",
      target);
}

// The message of the error PolicyWithTarget(target) gets (expected).
inline std::string TargetError(const std::string& target) {
  auto p = policy::ParsePolicy(PolicyWithTarget(target), "web.yaml");
  EXPECT_FALSE(p.ok());
  return p.ok() ? std::string() : std::string(p.status().message());
}

// A connect4 to port 25 refused by the default, recorded for `target`.
inline EventRecord RefusedConnectRecord(const std::string& target) {
  egress_event e{};
  e.family = EGRESS_FAMILY_IPV4;
  e.proto = IPPROTO_TCP;
  e.hook = EGRESS_HOOK_CONNECT4;
  e.verdict = EGRESS_VERDICT_DENY;
  e.reason = EGRESS_REASON_NO_MATCH;
  e.port = htons(25);
  EventRecord r;
  r.raw = e;
  r.ctx.target = target;
  return r;
}

}  // namespace egress::testing

#endif  // EGRESS_TESTS_UNIT_WORKLOAD_TEST_UTIL_H_
