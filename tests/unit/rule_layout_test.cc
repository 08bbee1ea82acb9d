// A rule's ports and destinations are held inside the Rule when there are few
// (rule.h: PortList, CidrList): a 100,000-rule apply builds, keeps and frees
// 200,000 heap blocks fewer. Every decoder must leave a one-port,
// one-destination rule without a heap block, and a rule with more than fit
// inside must come back equal through every codec.
#include <algorithm>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/testing/rule_builders.h"
#include "tests/testing/status_matchers.h"
#include "userspace/control/control_socket.h"
#include "userspace/control/protocol.h"
#include "userspace/policy/policy_file.h"
#include "userspace/policy/policy_writer.h"
#include "userspace/policy/rule.h"
#include "userspace/policy/rule_json.h"
#include "userspace/policy/spec.h"

namespace egress::policy {
namespace {

// True if `p` points into the bytes of `rule` itself (not the heap).
bool Inside(const void* p, const Rule& rule) {
  const char* begin = reinterpret_cast<const char*>(&rule);
  const char* q = static_cast<const char*>(p);
  return q >= begin && q < begin + sizeof(Rule);
}

void ExpectInline(const Rule& rule, const std::string& how) {
  ASSERT_EQ(rule.ports.size(), 1u) << how;
  ASSERT_EQ(rule.destinations.size(), 1u) << how;
  EXPECT_TRUE(Inside(rule.ports.data(), rule)) << how << ": ports on the heap";
  EXPECT_TRUE(Inside(rule.destinations.data(), rule))
      << how << ": destinations on the heap";
}

// The rule a policy file, the apply request and the store carry: one port
// to one address.
Rule OnePortOneHost() {
  return MakeRule(7, Action::kAllow, {Tcp(443)}, {C("10.0.0.5")});
}

// Past the room inside a Rule: three ports, three destinations.
Rule ThreePortsThreeHosts() {
  Rule r = MakeRule(9, Action::kDeny, {Tcp(443), Udp(53), Tcp(8000, 8080)},
                    {C("10.0.0.0/8"), C("2001:db8::/32"), C("192.0.2.7")});
  r.spec = "443/tcp,53/udp,8000-8080/tcp";
  return r;
}

std::vector<Rule> ViaApplyLine(const std::vector<Rule>& rules) {
  control::TargetSpec spec;
  spec.name = "t";
  spec.source_value = "/egress-t";
  spec.rules = rules;
  const std::string text =
      control::RequestText(control::ApplyRequest{false, {spec}, false});
  absl::StatusOr<control::Request> back = DecodeRequestLine(text);
  EXPECT_OK(back.status());
  if (!back.ok()) return {};
  return std::get<control::ApplyRequest>(*back).policies.at(0).rules;
}

std::vector<Rule> ViaPolicyFile(const std::vector<Rule>& rules) {
  PolicyDocument doc;
  doc.name = "t";
  doc.target = {TargetSource::kCgroup, "/egress-t"};
  doc.rules = rules;
  absl::StatusOr<Policy> back = ParsePolicy(WritePolicy(doc), "t.yaml");
  EXPECT_OK(back.status());
  if (!back.ok()) return {};
  return back->rules;
}

TEST(RuleLayoutTest, OnePortAndOneDestinationLiveInsideTheRule) {
  const Rule rule = OnePortOneHost();
  ExpectInline(rule, "built");
  Rule copy = rule;
  ExpectInline(copy, "copied");
  Rule moved = std::move(copy);
  ExpectInline(moved, "moved");

  const std::vector<std::string> words = {"443/tcp", "to", "10.0.0.5"};
  ASSERT_OK_AND_ASSIGN(Rule parsed, ParseRuleWords(Action::kAllow, words));
  ExpectInline(parsed, "egressctl's grammar");

  ASSERT_OK_AND_ASSIGN(nlohmann::json j, ParseJson(RuleJsonText(rule)));
  ASSERT_OK_AND_ASSIGN(Rule from_json, RuleFromJson(j));
  ExpectInline(from_json, "the JSON tree");

  const std::vector<Rule> applied = ViaApplyLine({rule});
  ASSERT_EQ(applied.size(), 1u);
  ExpectInline(applied[0], "the apply request line");

  const std::vector<Rule> filed = ViaPolicyFile({rule});
  ASSERT_EQ(filed.size(), 1u);
  ExpectInline(filed[0], "a policy file");
}

TEST(RuleLayoutTest, MorePortsAndDestinationsThanFitInsideRoundTrip) {
  const Rule wide = ThreePortsThreeHosts();
  const Rule narrow = OnePortOneHost();
  EXPECT_FALSE(Inside(wide.ports.data(), wide));
  EXPECT_FALSE(Inside(wide.destinations.data(), wide));
  Rule copy = wide;
  EXPECT_EQ(copy, wide);
  copy.destinations.pop_back();
  EXPECT_NE(copy, wide);
  // Assigning across the two layouts, both ways.
  copy = narrow;
  EXPECT_EQ(copy, narrow);
  copy = wide;
  EXPECT_EQ(copy, wide);

  ASSERT_OK_AND_ASSIGN(nlohmann::json j, ParseJson(RuleJsonText(wide)));
  ASSERT_OK_AND_ASSIGN(Rule from_json, RuleFromJson(j));
  EXPECT_EQ(from_json, wide);

  EXPECT_EQ(ViaApplyLine({wide, narrow, wide}),
            (std::vector<Rule>{wide, narrow, wide}));

  // A policy file keeps the rule's action, comment, and SETS of ports and
  // destinations (policy_writer.h); these are already in its order.
  const std::vector<Rule> filed = ViaPolicyFile({wide});
  ASSERT_EQ(filed.size(), 1u);
  EXPECT_EQ(filed[0].action, wide.action);
  EXPECT_EQ(filed[0].destinations, wide.destinations);
  EXPECT_EQ(filed[0].ports.size(), 3u);
  for (const PortProto& pp : wide.ports) {
    EXPECT_NE(std::find(filed[0].ports.begin(), filed[0].ports.end(), pp),
              filed[0].ports.end())
        << ProtoName(pp.proto) << " " << pp.lo << "-" << pp.hi;
  }
}

}  // namespace
}  // namespace egress::policy
