// `egressctl apply -f`: policy files become enforcement, a dry run shows the
// diff and changes nothing, a bad file changes nothing.
#include <errno.h>

#include <fstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/privileged/egressd_fixture.h"
#include "tests/privileged/verdict_expect.h"
#include "tests/testing/socket_probes.h"

namespace egress::testing {
namespace {

class ApplyTest : public EgressdTest {
 protected:
  std::string WritePolicy(const std::string& egress_rules) {
    std::string path =
        state_dir_.substr(0, state_dir_.rfind('/')) + "/web.yaml";
    std::ofstream(path) << "apiVersion: egress.dev/v1alpha1\n"
                           "kind: EgressPolicy\n"
                           "metadata:\n"
                           "  name: web\n"
                           "spec:\n"
                           "  target:\n"
                           "    cgroupPath: "
                        << cg_->relative_path()
                        << "\n"
                           "  egress:\n"
                        << egress_rules
                        << "  egressDeny:\n"
                           "  - to:\n"
                           "    - ipBlock: {cidr: 127.0.0.9/32}\n";
    return path;
  }
};

constexpr char kApi[] =
    "  - name: api\n"
    "    to:\n"
    "    - ipBlock: {cidr: 127.0.0.2/32}\n"
    "    ports:\n"
    "    - {port: 40001, protocol: TCP}\n";
constexpr char kDns[] =
    "  - name: dns\n"
    "    to:\n"
    "    - ipBlock: {cidr: 127.0.0.53/32}\n"
    "    ports:\n"
    "    - port: domain\n";

TEST_F(ApplyTest, DryRunShowsTheDiffAndApplyEnforces) {
  std::string file = WritePolicy(kApi);
  std::string dry = CtlOk({"apply", "-f", file, "--dry-run"});
  EXPECT_TRUE(absl::StrContains(dry, "Would create target web")) << dry;
  EXPECT_TRUE(absl::StrContains(dry, "+ ALLOW 40001/tcp to 127.0.0.2")) << dry;
  EXPECT_TRUE(CtlJson({"target", "list"})["targets"].empty());
  EXPECT_ALLOWED(InCgroup([] { return TcpConnect("127.0.0.2", 40002); }));

  CtlOk({"apply", "-f", file});
  EXPECT_ALLOWED(InCgroup([] { return TcpConnect("127.0.0.2", 40001); }));
  EXPECT_DENIED(InCgroup([] { return TcpConnect("127.0.0.2", 40002); }));
  EXPECT_DENIED(InCgroup([] { return UdpSendto("127.0.0.53", 53); }));
  nlohmann::json before = CtlJson({"list"});

  // A second rule: only it is new; the unchanged rules keep their ids.
  file = WritePolicy(std::string(kApi) + kDns);
  dry = CtlOk({"apply", "-f", file, "--dry-run"});
  EXPECT_TRUE(absl::StrContains(dry, "Would update target web")) << dry;
  EXPECT_TRUE(absl::StrContains(dry, "+ ALLOW")) << dry;
  EXPECT_FALSE(absl::StrContains(dry, "- ALLOW")) << dry;
  CtlOk({"apply", "-f", file});
  EXPECT_ALLOWED(InCgroup([] { return UdpSendto("127.0.0.53", 53); }));
  nlohmann::json after = CtlJson({"list"});
  EXPECT_EQ(after["targets"][0]["rules"][0]["id"],
            before["targets"][0]["rules"][0]["id"]);
  EXPECT_EQ(after["targets"][0]["rules"].size(), 3u);
}

TEST_F(ApplyTest, BadFileIsRejectedWithItsPositionAndChangesNothing) {
  CtlOk({"apply", "-f", WritePolicy(kApi)});
  nlohmann::json before = CtlJson({"list"});
  std::string file = WritePolicy(
      "  - to:\n"
      "    - ipBlock: {cidr: 127.0.0.2/32}\n"
      "    ports:\n"
      "    - {port: 0, protocol: TCP}\n");
  CommandResult r = Ctl({"apply", "-f", file});
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_TRUE(absl::StrContains(r.output, "web.yaml:")) << r.output;
  EXPECT_TRUE(absl::StrContains(r.output, "spec.egress[0].ports[0].port"))
      << r.output;
  EXPECT_EQ(CtlJson({"list"}), before);
  EXPECT_ALLOWED(InCgroup([] { return TcpConnect("127.0.0.2", 40001); }));
}

}  // namespace
}  // namespace egress::testing
