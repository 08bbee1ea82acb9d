// Container targets without root: label selectors, the HTTP wire format of a
// runtime's unix socket (response head, chunked bodies fed in pieces), the
// Docker Engine API's JSON, which containers a target selects, records and
// filters that name a container, and the CLI and policy file forms.
#include <arpa/inet.h>
#include <netinet/in.h>

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"
#include "tests/unit/workload_test_util.h"
#include "userspace/cli/cli_parse.h"
#include "userspace/events/event_filter.h"
#include "userspace/events/event_json.h"
#include "userspace/policy/label_selector.h"
#include "userspace/policy/policy_file.h"
#include "userspace/policy/policy_writer.h"
#include "userspace/workloads/docker_json.h"
#include "userspace/workloads/http_wire.h"
#include "userspace/workloads/selection.h"

namespace egress {
namespace {

using policy::Labels;
using policy::TargetSource;
using ::testing::HasSubstr;
using workloads::Container;

TEST(LabelSelectorTest, ParsesCanonicalizesAndMatches) {
  auto s =
      policy::ParseLabelSelector("tier=front, com.docker.compose.service=web");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(policy::LabelSelectorText(*s),
            "com.docker.compose.service=web,tier=front");
  Labels labels = {
      {"com.docker.compose.service", "web"}, {"tier", "front"}, {"extra", "x"}};
  EXPECT_TRUE(policy::SelectorMatches(*s, labels));
  labels["tier"] = "back";
  EXPECT_FALSE(policy::SelectorMatches(*s, labels));
  EXPECT_FALSE(policy::SelectorMatches({}, labels));     // never "everything"
  EXPECT_TRUE(policy::ParseLabelSelector("app=").ok());  // empty value
}

TEST(LabelSelectorTest, RefusesWhatIsNotKeyValue) {
  EXPECT_STATUS(policy::ParseLabelSelector("app"),
                absl::StatusCode::kInvalidArgument, "'app' is not key=value");
  EXPECT_STATUS(policy::ParseLabelSelector("=web"),
                absl::StatusCode::kInvalidArgument, "empty key");
  EXPECT_STATUS(policy::ParseLabelSelector("a=1,a=2"),
                absl::StatusCode::kInvalidArgument, "given twice");
  EXPECT_STATUS(policy::ParseLabelSelector("a=b c"),
                absl::StatusCode::kInvalidArgument, "letters, digits");
  EXPECT_STATUS(policy::ParseLabelSelector(""),
                absl::StatusCode::kInvalidArgument, "not key=value");
}

TEST(HttpWireTest, ResponseHead) {
  auto h = workloads::ParseResponseHead(
      "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
      "Transfer-Encoding: chunked\r\n");
  ASSERT_TRUE(h.ok()) << h.status();
  EXPECT_EQ(h->status, 200);
  EXPECT_TRUE(h->chunked);
  EXPECT_FALSE(h->content_length.has_value());
  h = workloads::ParseResponseHead(
      "HTTP/1.0 404 Not Found\r\nContent-Length: 7\r\n");
  ASSERT_TRUE(h.ok()) << h.status();
  EXPECT_EQ(h->status, 404);
  EXPECT_EQ(h->content_length, 7u);
  EXPECT_FALSE(workloads::ParseResponseHead("SSH-2.0-x\r\n").ok());
  EXPECT_FALSE(workloads::ParseResponseHead("HTTP/1.1 abc\r\n").ok());
  EXPECT_FALSE(
      workloads::ParseResponseHead("HTTP/1.1 200 OK\r\nno colon\r\n").ok());
  EXPECT_FALSE(
      workloads::ParseResponseHead("HTTP/1.1 200 OK\r\nContent-Length: x\r\n")
          .ok());
  EXPECT_THAT(workloads::GetRequest("/events"),
              HasSubstr("GET /events HTTP/1.1\r\nHost: "));
}

TEST(HttpWireTest, ChunkedBodyInAnyPieces) {
  const std::string wire =
      "5\r\nhello\r\n7;ext=1\r\n, world\r\n1b\r\n{\"Action\":\"start\"}\n"
      "........\r\n0\r\n\r\n";
  const std::string want = "hello, world{\"Action\":\"start\"}\n........";
  for (size_t piece : {1u, 2u, 3u, 7u, 1000u}) {
    workloads::ChunkedDecoder d;
    std::string out;
    for (size_t i = 0; i < wire.size(); i += piece) {
      ASSERT_TRUE(d.Feed(wire.substr(i, piece), &out).ok()) << piece;
    }
    EXPECT_EQ(out, want) << piece;
    EXPECT_TRUE(d.done()) << piece;
  }
}

TEST(HttpWireTest, MalformedChunksAreErrors) {
  std::string out;
  workloads::ChunkedDecoder bad_size;
  EXPECT_FALSE(bad_size.Feed("zz\r\n", &out).ok());
  workloads::ChunkedDecoder no_crlf;
  EXPECT_FALSE(no_crlf.Feed("2\r\nabX\r\n", &out).ok());
  workloads::ChunkedDecoder endless_line;
  EXPECT_FALSE(endless_line.Feed(std::string(5000, '1'), &out).ok());
}

constexpr char kInspect[] = R"({
  "Id": "8f3a5c2e9d1b7a6f4e3d2c1b0a9f8e7d6c5b4a3f2e1d0c9b8a7f6e5d4c3b2a1f",
  "Name": "/web",
  "State": {"Status": "running", "Running": true, "Pid": 4242},
  "Config": {"Image": "nginx:1.25",
             "Labels": {"com.docker.compose.service": "web", "n": 1}},
  "HostConfig": {"NetworkMode": "host"}
})";

TEST(DockerJsonTest, Inspect) {
  auto c = workloads::ParseContainerInspect(kInspect);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->name, "web");
  EXPECT_EQ(workloads::ShortId(c->id), "8f3a5c2e9d1b");
  EXPECT_EQ(c->image, "nginx:1.25");
  EXPECT_EQ(c->labels, (Labels{{"com.docker.compose.service", "web"}}));
  EXPECT_TRUE(c->running);
  EXPECT_EQ(c->pid, 4242);
  auto stopped = workloads::ParseContainerInspect(
      R"({"Id":"abcd1234","Name":"/x","State":{"Running":false,"Pid":0}})");
  ASSERT_TRUE(stopped.ok());
  EXPECT_FALSE(stopped->running);
  EXPECT_FALSE(workloads::ParseContainerInspect("{").ok());
  EXPECT_FALSE(workloads::ParseContainerInspect("[]").ok());
  EXPECT_FALSE(workloads::ParseContainerInspect(R"({"Id":"../../etc"})").ok());
}

TEST(DockerJsonTest, ListAndEvents) {
  auto ids = workloads::ParseContainerIds(
      R"([{"Id":"abcd1234"},{"Id":"not hex"},{"Names":["/x"]},{"Id":"ef01"}])");
  ASSERT_TRUE(ids.ok());
  EXPECT_EQ(*ids, (std::vector<std::string>{"abcd1234", "ef01"}));
  EXPECT_FALSE(workloads::ParseContainerIds(R"({"Id":"x"})").ok());

  using Kind = workloads::ContainerEvent::Kind;
  auto start = workloads::ParseDockerEvent(
      R"({"status":"start","id":"abcd","Type":"container","Action":"start",)"
      R"("Actor":{"ID":"abcd","Attributes":{"name":"web"}}})");
  ASSERT_TRUE(start.ok());
  EXPECT_EQ(start->kind, Kind::kStart);
  EXPECT_EQ(start->id, "abcd");
  auto create = workloads::ParseDockerEvent(
      R"({"Type":"container","Action":"create","Actor":{"ID":"abcd"}})");
  ASSERT_TRUE(create.ok());
  EXPECT_EQ(create->kind, Kind::kCreate);
  // Who a created container is, from the event alone: Docker's attributes
  // are its labels with its name and image over labels of those keys, so
  // labels `name` and `image` are left out (unknown).
  auto described = workloads::ParseDockerEvent(
      R"({"Type":"container","Action":"create","Actor":{"ID":"abcd",)"
      R"("Attributes":{"app":"web","tier":"edge","name":"web1",)"
      R"("image":"nginx:1.25","n":7}}})");
  ASSERT_TRUE(described.ok());
  EXPECT_EQ(described->kind, Kind::kCreate);
  EXPECT_EQ(described->name, "web1");
  EXPECT_EQ(described->image, "nginx:1.25");
  EXPECT_EQ(described->labels, (Labels{{"app", "web"}, {"tier", "edge"}}));
  for (const char* action : {"die", "destroy", "stop"}) {
    auto e = workloads::ParseDockerEvent(
        absl::StrCat(R"({"Type":"container","Action":")", action,
                     R"(","Actor":{"ID":"abcd"}})"));
    ASSERT_TRUE(e.ok());
    EXPECT_EQ(e->kind, Kind::kStop) << action;
  }
  // A rename changes what a --container target selects: inspected again.
  auto rename = workloads::ParseDockerEvent(
      R"({"Type":"container","Action":"rename","Actor":{"ID":"abcd",)"
      R"("Attributes":{"name":"web","oldName":"/tmp"}}})");
  ASSERT_TRUE(rename.ok());
  EXPECT_EQ(rename->kind, Kind::kRename);
  EXPECT_EQ(rename->id, "abcd");
  auto exec = workloads::ParseDockerEvent(
      R"({"Type":"container","Action":"exec_start: sh","Actor":{"ID":"ab12"}})");
  ASSERT_TRUE(exec.ok());
  EXPECT_EQ(exec->kind, Kind::kOther);
  auto network = workloads::ParseDockerEvent(
      R"({"Type":"network","Action":"connect","Actor":{"ID":"abcd"}})");
  ASSERT_TRUE(network.ok());
  EXPECT_EQ(network->kind, Kind::kOther);
  EXPECT_FALSE(workloads::ParseDockerEvent("not json").ok());
}

Container Running(const std::string& id, const std::string& name,
                  const std::string& cgroup, Labels labels = {}) {
  Container c;
  c.id = id;
  c.name = name;
  c.cgroup = cgroup;
  c.labels = std::move(labels);
  c.running = true;
  c.pid = 1;
  return c;
}

TEST(SelectionTest, ByNameIdAndLabels) {
  const std::vector<Container> running = {
      Running("aaaa1111", "web", "/docker/aaaa1111", {{"app", "web"}}),
      Running("aaaa2222", "web-2", "/docker/aaaa2222",
              {{"app", "web"}, {"tier", "edge"}}),
      Running("bbbb3333", "db", "/docker/bbbb3333", {{"app", "db"}}),
      Running("cccc4444", "starting", "", {{"app", "web"}}),  // no cgroup
  };
  auto names = [&](TargetSource s, const std::string& v) {
    std::vector<std::string> out;
    for (const Container& c : workloads::SelectContainers(s, v, running)) {
      out.push_back(c.name);
    }
    return out;
  };
  using V = std::vector<std::string>;
  EXPECT_EQ(names(TargetSource::kContainer, "web"), V{"web"});
  EXPECT_EQ(names(TargetSource::kContainer, "bbbb3333"), V{"db"});
  EXPECT_EQ(names(TargetSource::kContainer, "bbbb"), V{"db"});
  EXPECT_EQ(names(TargetSource::kContainer, "bbb"), V{});  // too short
  // Ambiguous: every container the prefix names, none left to escape.
  EXPECT_EQ(names(TargetSource::kContainer, "aaaa"), (V{"web", "web-2"}));
  EXPECT_EQ(names(TargetSource::kContainer, "aaaa2"), V{"web-2"});
  EXPECT_EQ(names(TargetSource::kContainer, "nginx"), V{});
  EXPECT_EQ(names(TargetSource::kSelector, "app=web"), (V{"web", "web-2"}));
  EXPECT_EQ(names(TargetSource::kSelector, "app=web,tier=edge"), V{"web-2"});
  EXPECT_EQ(names(TargetSource::kSelector, "bad"), V{});
  EXPECT_EQ(names(TargetSource::kCgroup, "/docker/aaaa1111"), V{});

  auto of = workloads::ContainerOfCgroup("/docker/aaaa2222/sub", running);
  ASSERT_TRUE(of.has_value());
  EXPECT_EQ(of->name, "web-2");
  EXPECT_FALSE(workloads::ContainerOfCgroup("/docker/aaaa22", running));
}

TEST(SelectionTest, AmbiguousContainersAreTheOnesAValueNamesWhenSeveral) {
  Container created;  // not running: it may start any moment
  created.id = "aaaa3333";
  created.name = "next";
  const std::vector<Container> all = {
      Running("aaaa2222", "web-2", "/docker/aaaa2222"),
      Running("aaaa1111", "web", "/docker/aaaa1111"), created,
      Running("bbbb3333", "aaaa", "/docker/bbbb3333"),
      Running("cccc4444", "db", "/docker/cccc4444")};
  auto names = [&](TargetSource s, const std::string& v) {
    std::vector<std::string> out;
    for (const Container& c : workloads::AmbiguousContainers(s, v, all)) {
      out.push_back(c.name);
    }
    return out;
  };
  using V = std::vector<std::string>;
  // By name; a container named like the prefix is named too.
  EXPECT_EQ(names(TargetSource::kContainer, "aaaa"),
            (V{"aaaa", "next", "web", "web-2"}));
  EXPECT_EQ(names(TargetSource::kContainer, "aaaa1"), V{});
  EXPECT_EQ(names(TargetSource::kContainer, "web"), V{});
  EXPECT_EQ(names(TargetSource::kContainer, "cccc"), V{});
  EXPECT_EQ(names(TargetSource::kSelector, "app=web"), V{});
}

TEST(SelectionTest, CreatedContainerIsSelectedByWhoItIs) {
  Container created;
  created.id = "dddd5555";
  created.name = "next";
  created.labels = {{"app", "web"}};
  EXPECT_TRUE(
      workloads::SelectContainers(TargetSource::kSelector, "app=web", {created})
          .empty())
      << "not running: no cgroup to attach to";
  EXPECT_TRUE(
      workloads::SelectsContainer(TargetSource::kSelector, "app=web", created));
  EXPECT_TRUE(
      workloads::SelectsContainer(TargetSource::kContainer, "next", created));
  EXPECT_TRUE(
      workloads::SelectsContainer(TargetSource::kContainer, "dddd", created));
  EXPECT_FALSE(
      workloads::SelectsContainer(TargetSource::kSelector, "app=db", created));
  EXPECT_FALSE(
      workloads::SelectsContainer(TargetSource::kSelector, "bad", created));
  EXPECT_FALSE(workloads::SelectsContainer(TargetSource::kCgroup,
                                           "/docker/dddd5555", created));
}

TEST(ContainerRecordTest, JsonTextAndFilter) {
  EventRecord r = testing::RefusedConnectRecord("web");
  r.ctx.container = {"web", "8f3a5c2e9d1b", "nginx:1.25"};
  nlohmann::json j = EventToJson(r.raw, r.ctx);
  EXPECT_EQ(j["container"], (nlohmann::json{{"name", "web"},
                                            {"id", "8f3a5c2e9d1b"},
                                            {"image", "nginx:1.25"}}));
  EXPECT_FALSE(EventToJson(r.raw, EventContext{}).contains("container"));

  EventFilter f;
  f.container = "web";
  EXPECT_TRUE(f.Matches(r));
  f.container = "8f3a5c2e9d1b";
  EXPECT_TRUE(f.Matches(r));
  f.container = "8f3a5c2e9d1b7a6f4e3d2c1b0a9f8e7d";  // a longer id
  EXPECT_TRUE(f.Matches(r));
  f.container = "api";
  EXPECT_FALSE(f.Matches(r));
  r.ctx.container = {};
  f.container = "web";
  EXPECT_FALSE(f.Matches(r));
}

TEST(ContainerPolicyTest, ContainerAndSelectorTargets) {
  auto p = policy::ParsePolicy(
      testing::PolicyWithTarget("    container: web\n"), "web.yaml");
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->target, (policy::PolicyTarget{TargetSource::kContainer, "web"}));
  p = policy::ParsePolicy(
      testing::PolicyWithTarget("    selector:\n      matchLabels:\n"
                                "        tier: front\n"
                                "        com.docker.compose.service: web\n"),
      "web.yaml");
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->target, (policy::PolicyTarget{
                           TargetSource::kSelector,
                           "com.docker.compose.service=web,tier=front"}));
  // Written and read back the same.
  policy::PolicyDocument doc;
  doc.name = "web";
  doc.target = p->target;
  auto again = policy::ParsePolicy(policy::WritePolicy(doc), "x.yaml");
  ASSERT_TRUE(again.ok()) << again.status() << policy::WritePolicy(doc);
  EXPECT_EQ(again->target, p->target);
}

TEST(ContainerPolicyTest, ErrorsNameFileLineAndField) {
  auto error = testing::TargetError;
  EXPECT_EQ(error("    container: \"a b\"\n"),
            "web.yaml:7:16: spec.target.container: \"a b\" is not a "
            "container name or id");
  EXPECT_EQ(error("    selector: {app: web}\n"),
            "web.yaml:7:16: spec.target.selector.app: unknown field \"app\"; "
            "expected one of matchLabels");
  EXPECT_EQ(error("    selector: {matchLabels: {}}\n"),
            "web.yaml:7:29: spec.target.selector.matchLabels: expected a "
            "mapping of at least one label: value");
  EXPECT_EQ(error("    selector: {matchLabels: {app: \"a b\"}}\n"),
            "web.yaml:7:35: spec.target.selector.matchLabels.app: label "
            "'app=a b': keys and values are letters, digits and . _ / - "
            "(keys also :), at most 253 characters");
}

TEST(ContainerCliTest, TargetAddAndEvents) {
  auto add = cli::ParseCommandLine(
      {"target", "add", "web", "--selector", "tier=front,app=web"});
  ASSERT_TRUE(add.ok()) << add.status();
  const auto& spec = std::get<control::TargetAddRequest>(*add->request).spec;
  EXPECT_EQ(spec.source, TargetSource::kSelector);
  EXPECT_EQ(spec.source_value, "app=web,tier=front");
  auto by_name =
      cli::ParseCommandLine({"target", "add", "web", "--container", "web"});
  ASSERT_TRUE(by_name.ok()) << by_name.status();
  EXPECT_EQ(std::get<control::TargetAddRequest>(*by_name->request).spec.source,
            TargetSource::kContainer);
  EXPECT_STATUS(
      cli::ParseCommandLine({"target", "add", "web", "--selector", "app"}),
      absl::StatusCode::kInvalidArgument, "--selector: selector 'app'");
  auto events = cli::ParseCommandLine({"events", "--container", "web"});
  ASSERT_TRUE(events.ok()) << events.status();
  EXPECT_EQ(std::get<control::EventsRequest>(*events->request).container,
            "web");
}

}  // namespace
}  // namespace egress
