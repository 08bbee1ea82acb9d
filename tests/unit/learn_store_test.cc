#include <netinet/in.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"
#include "userspace/daemon/learn.h"
#include "userspace/policy/policy_file.h"
#include "userspace/policy/rule.h"
#include "userspace/policy/suggest.h"

namespace egress {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::SizeIs;

std::array<uint8_t, 16> Addr(const std::string& text) {
  absl::StatusOr<policy::Cidr> c = policy::Cidr::Parse(text);
  EXPECT_TRUE(c.ok()) << c.status();
  return c.ok() ? c->addr : std::array<uint8_t, 16>{};
}

// ::ffff:a.b.c.d as the kernel reports it (Cidr::Parse would make it IPv4).
std::array<uint8_t, 16> Mapped(uint8_t a, uint8_t b, uint8_t c, uint8_t d) {
  return {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, a, b, c, d};
}

std::string Text(const policy::Observation& o) {
  policy::Cidr c;
  c.family = o.family;
  c.addr = o.addr;
  c.prefix_len = o.family == 4 ? 32 : 128;
  return absl::StrCat(c.ToString(), " ", int{o.ip_proto}, "/", o.port);
}

// A fresh directory under TMPDIR, removed with its contents afterwards.
class TempDir {
 public:
  TempDir() {
    const char* base = getenv("TMPDIR");
    std::string tmpl =
        absl::StrCat(base ? base : "/tmp", "/learn_store_test.XXXXXX");
    EXPECT_NE(mkdtemp(tmpl.data()), nullptr);
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  std::string File(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

TEST(LearnStoreTest, AggregatesPerDestinationProtocolAndPort) {
  LearnStore s;
  s.Record("web", 4, Addr("10.0.0.25"), IPPROTO_TCP, 25, 1, 300, "sendmail");
  s.Record("web", 4, Addr("10.0.0.25"), IPPROTO_TCP, 25, 4, 100, "php-fpm");
  s.Record("web", 4, Addr("10.0.0.25"), IPPROTO_TCP, 25, 2, 200, "sendmail");
  s.Record("web", 4, Addr("10.0.0.25"), IPPROTO_UDP, 25, 1, 50, "");
  s.Record("web", 4, Addr("10.0.0.26"), IPPROTO_TCP, 25, 1, 50, "x");
  s.Record("other", 4, Addr("10.0.0.25"), IPPROTO_TCP, 25, 9, 50, "y");
  EXPECT_EQ(s.size("web"), 3u);
  EXPECT_EQ(s.size("other"), 1u);
  EXPECT_EQ(s.size("nobody"), 0u);

  const std::vector<policy::Observation> q = s.Query("web", 0);
  ASSERT_THAT(q, SizeIs(3));
  EXPECT_EQ(Text(q[0]), "10.0.0.25 6/25");
  EXPECT_EQ(q[0].count, 7u);
  EXPECT_EQ(q[0].first_seen_ns, 100);
  EXPECT_EQ(q[0].last_seen_ns, 300);
  EXPECT_THAT(q[0].processes, ElementsAre("php-fpm", "sendmail"));
  EXPECT_EQ(Text(q[1]), "10.0.0.25 17/25");
  EXPECT_EQ(q[1].count, 1u);
  EXPECT_THAT(q[1].processes, IsEmpty());
  EXPECT_EQ(Text(q[2]), "10.0.0.26 6/25");
}

TEST(LearnStoreTest, ZeroCountCountsAsOne) {
  LearnStore s;
  s.Record("web", 4, Addr("10.0.0.1"), IPPROTO_TCP, 80, 0, 1, "a");
  EXPECT_EQ(s.Query("web", 0).at(0).count, 1u);
}

TEST(LearnStoreTest, QuerySortsByFamilyAddressProtocolPort) {
  LearnStore s;
  s.Record("t", 6, Addr("2001:db8::1"), IPPROTO_TCP, 443, 1, 1, "");
  s.Record("t", 4, Addr("10.0.0.2"), IPPROTO_TCP, 443, 1, 1, "");
  s.Record("t", 4, Addr("10.0.0.1"), IPPROTO_UDP, 53, 1, 1, "");
  s.Record("t", 4, Addr("10.0.0.1"), IPPROTO_TCP, 8080, 1, 1, "");
  s.Record("t", 4, Addr("10.0.0.1"), IPPROTO_TCP, 443, 1, 1, "");
  s.Record("t", 4, Addr("9.0.0.1"), IPPROTO_ICMP, 0, 1, 1, "");
  std::vector<std::string> got;
  for (const policy::Observation& o : s.Query("t", 0)) got.push_back(Text(o));
  EXPECT_THAT(got, ElementsAre("9.0.0.1 1/0", "10.0.0.1 6/443",
                               "10.0.0.1 6/8080", "10.0.0.1 17/53",
                               "10.0.0.2 6/443", "2001:db8::1 6/443"));
}

TEST(LearnStoreTest, SinceFiltersOnLastSeen) {
  LearnStore s;
  s.Record("t", 4, Addr("10.0.0.1"), IPPROTO_TCP, 1, 1, 100, "");
  s.Record("t", 4, Addr("10.0.0.2"), IPPROTO_TCP, 1, 1, 100, "");
  s.Record("t", 4, Addr("10.0.0.2"), IPPROTO_TCP, 1, 1, 500, "");
  s.Record("t", 4, Addr("10.0.0.3"), IPPROTO_TCP, 1, 1, 1000, "");
  EXPECT_THAT(s.Query("t", 0), SizeIs(3));
  EXPECT_THAT(s.Query("t", 100), SizeIs(3));
  const std::vector<policy::Observation> q = s.Query("t", 101);
  ASSERT_THAT(q, SizeIs(2));
  EXPECT_EQ(Text(q[0]), "10.0.0.2 6/1");
  EXPECT_EQ(q[0].first_seen_ns, 100);  // the whole entry, not just the tail
  EXPECT_EQ(q[0].count, 2u);
  EXPECT_THAT(s.Query("t", 1001), IsEmpty());
  EXPECT_THAT(s.Query("unknown", 0), IsEmpty());
}

TEST(LearnStoreTest, BoundedWithOverflow) {
  LearnStore s(3);
  for (int i = 1; i <= 5; ++i) {
    s.Record("t", 4, Addr(absl::StrCat("10.0.0.", i)), IPPROTO_TCP, 80, 2, i,
             "");
  }
  EXPECT_EQ(s.size("t"), 3u);
  EXPECT_EQ(s.overflow("t"), 4u);  // two dropped records of count 2
  // Existing keys keep counting; new ones keep overflowing.
  s.Record("t", 4, Addr("10.0.0.1"), IPPROTO_TCP, 80, 10, 9, "");
  s.Record("t", 4, Addr("10.0.0.1"), IPPROTO_TCP, 81, 1, 9, "");
  EXPECT_EQ(s.Query("t", 0).at(0).count, 12u);
  EXPECT_EQ(s.overflow("t"), 5u);
  // The bound is per target.
  s.Record("u", 4, Addr("10.0.0.9"), IPPROTO_TCP, 80, 1, 1, "");
  EXPECT_EQ(s.size("u"), 1u);
  EXPECT_EQ(s.overflow("u"), 0u);
  EXPECT_EQ(s.overflow("none"), 0u);
}

TEST(LearnStoreTest, KeepsTheFirstEightProcessNames) {
  LearnStore s;
  for (int i = 9; i >= 0; --i) {
    s.Record("t", 4, Addr("10.0.0.1"), IPPROTO_TCP, 80, 1, 1,
             absl::StrCat("p", i));
    s.Record("t", 4, Addr("10.0.0.1"), IPPROTO_TCP, 80, 1, 1, "p9");
  }
  const policy::Observation o = s.Query("t", 0).at(0);
  EXPECT_THAT(o.processes,
              ElementsAre("p2", "p3", "p4", "p5", "p6", "p7", "p8", "p9"));
  EXPECT_EQ(o.count, 20u);
}

TEST(LearnStoreTest, MappedAddressesAreStoredAsIpv4) {
  LearnStore s;
  s.Record("t", 6, Mapped(192, 0, 2, 7), IPPROTO_TCP, 25, 1, 1, "a");
  s.Record("t", 4, Addr("192.0.2.7"), IPPROTO_TCP, 25, 1, 2, "b");
  // Stray bytes past an IPv4 address do not make a second entry.
  std::array<uint8_t, 16> junk = Addr("192.0.2.7");
  junk[8] = 1;
  s.Record("t", 4, junk, IPPROTO_TCP, 25, 1, 3, "c");
  const std::vector<policy::Observation> q = s.Query("t", 0);
  ASSERT_THAT(q, SizeIs(1));
  EXPECT_EQ(q[0].family, 4);
  EXPECT_EQ(Text(q[0]), "192.0.2.7 6/25");
  EXPECT_EQ(q[0].count, 3u);
  // Not mapped: a plain IPv6 address stays IPv6.
  s.Record("t", 6, Addr("::192.0.2.7"), IPPROTO_TCP, 25, 1, 1, "a");
  EXPECT_EQ(s.size("t"), 2u);
}

TEST(LearnStoreTest, BadFamilyIsIgnored) {
  LearnStore s;
  s.Record("t", 5, Addr("10.0.0.1"), IPPROTO_TCP, 25, 1, 1, "a");
  EXPECT_EQ(s.size("t"), 0u);
  EXPECT_FALSE(s.dirty());
}

TEST(LearnStoreTest, ForgetAndDirty) {
  LearnStore s;
  EXPECT_FALSE(s.dirty());
  s.Record("t", 4, Addr("10.0.0.1"), IPPROTO_TCP, 25, 1, 1, "a");
  EXPECT_TRUE(s.dirty());
  s.clear_dirty();
  EXPECT_FALSE(s.dirty());
  s.Forget("nobody");
  EXPECT_FALSE(s.dirty());
  s.Forget("t");
  EXPECT_TRUE(s.dirty());
  EXPECT_EQ(s.size("t"), 0u);
  EXPECT_THAT(s.Query("t", 0), IsEmpty());
}

LearnStore Sample() {
  LearnStore s(16);
  s.Record("web", 4, Addr("10.0.0.25"), IPPROTO_TCP, 25, 3, -5, "sendmail");
  s.Record("web", 4, Addr("10.0.0.25"), IPPROTO_TCP, 25, 1, 1LL << 62, "php");
  s.Record("web", 6, Addr("2001:db8::1"), IPPROTO_ICMPV6, 0, 1, 7, "");
  s.Record("db", 4, Addr("127.0.0.1"), IPPROTO_UDP, 53, 2, 9, "päth \"x\"");
  for (int i = 0; i < 3; ++i) {
    s.Record("db", 4, Addr("10.0.0.1"), IPPROTO_UDP, 53 + i, 1, 9, "");
  }
  return s;
}

void ExpectSameContent(const LearnStore& a, const LearnStore& b) {
  EXPECT_EQ(a.ToJson(), b.ToJson());
  for (const char* t : {"web", "db"}) {
    const std::vector<policy::Observation> qa = a.Query(t, INT64_MIN);
    const std::vector<policy::Observation> qb = b.Query(t, INT64_MIN);
    ASSERT_EQ(qa.size(), qb.size());
    for (size_t i = 0; i < qa.size(); ++i) {
      EXPECT_EQ(Text(qa[i]), Text(qb[i]));
      EXPECT_EQ(qa[i].count, qb[i].count);
      EXPECT_EQ(qa[i].first_seen_ns, qb[i].first_seen_ns);
      EXPECT_EQ(qa[i].last_seen_ns, qb[i].last_seen_ns);
      EXPECT_EQ(qa[i].processes, qb[i].processes);
    }
    EXPECT_EQ(a.overflow(t), b.overflow(t));
  }
}

TEST(LearnStoreTest, JsonRoundTrip) {
  LearnStore s = Sample();
  s.Record("tiny", 4, Addr("10.0.0.1"), IPPROTO_TCP, 1, 1, 1, "");
  const nlohmann::json j = s.ToJson();
  EXPECT_EQ(j["version"], 1);
  EXPECT_EQ(j["targets"]["web"]["entries"][0]["addr"], "10.0.0.25");
  ASSERT_OK_AND_ASSIGN(LearnStore back, LearnStore::FromJson(j, "l.json"));
  ExpectSameContent(s, back);
  EXPECT_FALSE(back.dirty());
  EXPECT_EQ(back.size("tiny"), 1u);
}

TEST(LearnStoreTest, FromJsonWithASmallerBoundOverflows) {
  LearnStore s(16);
  for (int i = 0; i < 5; ++i) {
    s.Record("t", 4, Addr("10.0.0.1"), IPPROTO_TCP, 100 + i, 2, 1, "");
  }
  ASSERT_OK_AND_ASSIGN(LearnStore back,
                       LearnStore::FromJson(s.ToJson(), "l.json", 3));
  EXPECT_EQ(back.size("t"), 3u);
  EXPECT_EQ(back.overflow("t"), 4u);
  EXPECT_EQ(back.max_entries_per_target(), 3u);
}

TEST(LearnStoreTest, FromJsonNamesFileAndField) {
  const nlohmann::json good = Sample().ToJson();
  struct Case {
    const char* pointer;  // JSON pointer of the field to replace
    nlohmann::json value;
    const char* message;
  };
  const Case cases[] = {
      {"/version", 2, "l.json: version: missing or not 1"},
      {"/targets", nlohmann::json::array(), "l.json: targets: missing"},
      {"/targets/web", 3, "l.json: targets.web: not an object"},
      {"/targets/web/overflow", -1, "targets.web.overflow: not a non-negative"},
      {"/targets/web/entries", "x", "targets.web.entries: missing or not"},
      {"/targets/web/entries/0", 1, "targets.web.entries[0]: not an object"},
      {"/targets/web/entries/0/family", 5,
       "entries[0].family: 5 is not 4 or 6"},
      {"/targets/web/entries/0/family", "4", "entries[0].family: missing"},
      {"/targets/web/entries/0/addr", "10.0.0.256",
       "entries[0].addr: bad address"},
      {"/targets/web/entries/0/addr", "10.0.0.0/8",
       "entries[0].addr: '10.0.0.0/8' is not one IPv4 address"},
      {"/targets/web/entries/0/addr", "2001:db8::1", "is not one IPv4 address"},
      {"/targets/web/entries/0/ip_proto", 256,
       "entries[0].ip_proto: missing or not a number 0-255"},
      {"/targets/web/entries/0/port", 65536,
       "entries[0].port: missing or not a number 0-65535"},
      {"/targets/web/entries/0/count", -3, "entries[0].count: missing"},
      {"/targets/web/entries/0/first_seen_ns", 1.5,
       "entries[0].first_seen_ns: missing or not a whole number"},
      {"/targets/web/entries/0/last_seen_ns", -100,
       "entries[0].first_seen_ns: after last_seen_ns"},
      {"/targets/web/entries/0/processes", "sendmail",
       "entries[0].processes: not a list"},
      {"/targets/web/entries/0/processes", nlohmann::json::array({"a", 1}),
       "entries[0].processes: not a list of"},
      {"/targets/web/entries/0/processes",
       nlohmann::json::array({"1", "2", "3", "4", "5", "6", "7", "8", "9"}),
       "entries[0].processes: more than 8 names"},
      {"/targets/web/entries/1", good["targets"]["web"]["entries"][0],
       "targets.web.entries[1]: duplicate entry"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.pointer);
    nlohmann::json j = good;
    j[nlohmann::json::json_pointer(c.pointer)] = c.value;
    EXPECT_STATUS(LearnStore::FromJson(j, "l.json"),
                  absl::StatusCode::kInvalidArgument, c.message);
  }
  EXPECT_STATUS(LearnStore::FromJson(nlohmann::json::array(), "l.json"),
                absl::StatusCode::kInvalidArgument, "l.json: (top level)");
  nlohmann::json no_entries = good;
  no_entries["targets"]["web"].erase("entries");
  EXPECT_STATUS(LearnStore::FromJson(no_entries, "l.json"),
                absl::StatusCode::kInvalidArgument, "targets.web.entries");
}

TEST(LearnStoreTest, SaveLoadRoundTrip) {
  TempDir dir;
  const std::string path = dir.File("learn.json");
  const LearnStore s = Sample();
  ASSERT_OK(s.Save(path));
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
  struct stat st;
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_OK_AND_ASSIGN(LearnStore back, LearnStore::Load(path, 16));
  ExpectSameContent(s, back);
  EXPECT_FALSE(back.dirty());
  // Saving over an existing file replaces it.
  LearnStore other;
  other.Record("x", 4, Addr("10.0.0.1"), IPPROTO_TCP, 1, 1, 1, "");
  ASSERT_OK(other.Save(path));
  ASSERT_OK_AND_ASSIGN(LearnStore again, LearnStore::Load(path));
  EXPECT_EQ(again.size("x"), 1u);
  EXPECT_EQ(again.size("web"), 0u);
}

TEST(LearnStoreTest, LoadMissingFileIsEmpty) {
  TempDir dir;
  ASSERT_OK_AND_ASSIGN(LearnStore s,
                       LearnStore::Load(dir.File("absent.json"), 7));
  EXPECT_EQ(s.ToJson(), LearnStore().ToJson());
  EXPECT_EQ(s.max_entries_per_target(), 7u);
  EXPECT_FALSE(s.dirty());
}

TEST(LearnStoreTest, LoadCorruptFileIsDataLossNamingTheFile) {
  TempDir dir;
  const std::string path = dir.File("learn.json");
  std::ofstream(path) << "{\"version\": 1, \"targets\": {";
  EXPECT_STATUS(LearnStore::Load(path), absl::StatusCode::kDataLoss,
                absl::StrCat("learn file ", path, " is corrupt (not JSON)"));
  std::ofstream(path, std::ios::trunc)
      << R"({"version": 1, "targets": {"web": {"entries": [{"family": 9}]}}})";
  EXPECT_STATUS(LearnStore::Load(path), absl::StatusCode::kDataLoss,
                absl::StrCat(path, ": targets.web.entries[0].family"));
}

TEST(LearnStoreTest, SaveIntoMissingDirectoryFails) {
  TempDir dir;
  const std::string path = dir.File("no/such/dir/learn.json");
  EXPECT_STATUS(Sample().Save(path), absl::StatusCode::kNotFound,
                "learn.json.tmp");
}

// What the store learned is what SuggestPolicy takes: the suggestion allows
// the learned attempts and nothing more.
TEST(LearnStoreTest, QueryFeedsSuggestPolicy) {
  LearnStore s;
  s.Record("web", 6, Mapped(10, 0, 0, 25), IPPROTO_TCP, 25, 3, 10, "sendmail");
  s.Record("web", 4, Addr("10.0.0.53"), IPPROTO_UDP, 53, 40, 20, "php-fpm");
  s.Record("web", 6, Addr("2001:db8::1"), IPPROTO_ICMPV6, 0, 1, 30, "ping");
  s.Record("web", 4, Addr("10.0.0.99"), IPPROTO_TCP, 80, 1, 5, "old");
  policy::SuggestOptions options;
  options.name = "web";
  options.target = {policy::TargetSource::kUnit, "web.service"};
  ASSERT_OK_AND_ASSIGN(std::string text,
                       policy::SuggestPolicy(s.Query("web", 10), options));
  ASSERT_OK_AND_ASSIGN(policy::Policy p, policy::ParsePolicy(text, "web.yaml"));
  auto allowed = [&](uint8_t proto, uint16_t port, uint8_t family,
                     const std::string& addr) {
    for (const policy::Rule& r : p.rules) {
      if (policy::RuleMatches(r, proto, port, family, Addr(addr))) return true;
    }
    return false;
  };
  EXPECT_TRUE(allowed(IPPROTO_TCP, 25, 4, "10.0.0.25"));
  EXPECT_TRUE(allowed(IPPROTO_UDP, 53, 4, "10.0.0.53"));
  EXPECT_TRUE(allowed(IPPROTO_ICMPV6, 0, 6, "2001:db8::1"));
  EXPECT_FALSE(allowed(IPPROTO_TCP, 80, 4, "10.0.0.99"));  // before `since`
  EXPECT_FALSE(allowed(IPPROTO_TCP, 53, 4, "10.0.0.53"));
  EXPECT_THAT(text, ::testing::HasSubstr("3 attempts by sendmail"));
}

}  // namespace
}  // namespace egress
