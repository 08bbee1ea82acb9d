#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/rule_builders.h"
#include "userspace/policy/rule.h"
#include "userspace/policy/services.h"
#include "userspace/policy/spec.h"

namespace egress::policy {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

class SpecTest : public ::testing::Test {
 protected:
  absl::StatusOr<Rule> Parse(std::vector<std::string> words,
                             Action action = Action::kAllow) {
    return ParseRuleWords(action, words);
  }

  Rule MustParse(std::vector<std::string> words,
                 Action action = Action::kAllow) {
    absl::StatusOr<Rule> r = Parse(words, action);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : Rule{};
  }

  // The InvalidArgument message for `words`.
  std::string Error(std::vector<std::string> words) {
    absl::StatusOr<Rule> r = Parse(words);
    EXPECT_FALSE(r.ok());
    if (r.ok()) return "";
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument)
        << r.status();
    return std::string(r.status().message());
  }
};

TEST(ParsePortTest, AcceptsOneTo65535) {
  EXPECT_EQ(*ParsePort("1"), 1);
  EXPECT_EQ(*ParsePort("443"), 443);
  EXPECT_EQ(*ParsePort("65535"), 65535);
}

// 0443 is 443 to a decimal reader and octal 291 to others: refused with the
// number to write instead, in every place a port is typed.
TEST(ParsePortTest, RejectsLeadingZeros) {
  EXPECT_EQ(ParsePort("0443").status().message(),
            "bad port '0443': written with a leading zero, which some tools "
            "read as octal; write 443");
  EXPECT_EQ(ParsePort("0080").status().message(),
            "bad port '0080': written with a leading zero, which some tools "
            "read as octal; write 80");
  EXPECT_EQ(ParseSpec("0443/tcp").status().message(),
            "bad port '0443' in '0443/tcp': written with a leading zero, "
            "which some tools read as octal; write 443");
  EXPECT_EQ(ParseSpec("80,0443").status().message(),
            "bad port '0443' in '80,0443': written with a leading zero, which "
            "some tools read as octal; write 443");
  EXPECT_EQ(ParseSpec("1000-02000/udp").status().message(),
            "bad port range '1000-02000' in '1000-02000/udp': '02000' is "
            "written with a leading zero, which some tools read as octal; "
            "write 2000");
}

TEST(ParsePortTest, RejectsWithWordInMessage) {
  EXPECT_EQ(ParsePort("0").status().message(),
            "bad port '0': out of range 1-65535");
  EXPECT_EQ(ParsePort("65536").status().message(),
            "bad port '65536': out of range 1-65535");
  EXPECT_EQ(ParsePort("99999999999999999999").status().message(),
            "bad port '99999999999999999999': out of range 1-65535");
  EXPECT_EQ(ParsePort("http").status().message(),
            "bad port 'http': not a number");
  EXPECT_EQ(ParsePort("+25").status().message(),
            "bad port '+25': not a number");
  EXPECT_EQ(ParsePort(" 25").status().message(),
            "bad port ' 25': not a number");
  EXPECT_EQ(ParsePort("").status().message(), "bad port '': not a number");
  EXPECT_EQ(ParsePort("-1").status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(ParseSpecTest, PortsAndProtocols) {
  EXPECT_THAT(*ParseSpec("443/tcp"), ElementsAre(Tcp(443)));
  EXPECT_THAT(*ParseSpec("53/udp"), ElementsAre(Udp(53)));
  EXPECT_THAT(*ParseSpec("53"), ElementsAre(Tcp(53), Udp(53)));
  EXPECT_THAT(*ParseSpec("53/any"), ElementsAre(Tcp(53), Udp(53)));
  EXPECT_THAT(*ParseSpec("1000-2000/udp"), ElementsAre(Udp(1000, 2000)));
  EXPECT_THAT(*ParseSpec("6000:6010/tcp"), ElementsAre(Tcp(6000, 6010)));
  EXPECT_THAT(*ParseSpec("1-65535/tcp"), ElementsAre(Tcp(1, 65535)));
  EXPECT_THAT(*ParseSpec("5-5/tcp"), ElementsAre(Tcp(5)));
  EXPECT_THAT(*ParseSpec("80,443,8000-8080/tcp"),
              ElementsAre(Tcp(80), Tcp(443), Tcp(8000, 8080)));
  EXPECT_THAT(*ParseSpec("80,443"),
              ElementsAre(Tcp(80), Tcp(443), Udp(80), Udp(443)));
  EXPECT_THAT(*ParseSpec("80,80/tcp"), ElementsAre(Tcp(80)));
}

TEST(ParseSpecTest, Keywords) {
  EXPECT_THAT(*ParseSpec("any"),
              ElementsAre(Tcp(0, 65535), Udp(0, 65535), kIcmp));
  EXPECT_THAT(*ParseSpec("icmp"), ElementsAre(kIcmp));
  EXPECT_THAT(*ParseSpec("raw"), ElementsAre(kRaw));
  EXPECT_THAT(*ParseSpec("tcp"), ElementsAre(Tcp(0, 65535)));
  EXPECT_THAT(*ParseSpec("udp"), ElementsAre(Udp(0, 65535)));
}

TEST(ParseSpecTest, Services) {
  EXPECT_THAT(*ParseSpec("smtp"), ElementsAre(Tcp(25)));
  EXPECT_THAT(*ParseSpec("https"), ElementsAre(Tcp(443), Udp(443)));
  EXPECT_THAT(*ParseSpec("domain"), ElementsAre(Tcp(53), Udp(53)));
  EXPECT_THAT(*ParseSpec("dns"), ElementsAre(Tcp(53), Udp(53)));
  EXPECT_THAT(*ParseSpec("smtps"), ElementsAre(Tcp(465)));
  EXPECT_THAT(*ParseSpec("submissions"), ElementsAre(Tcp(465)));
  EXPECT_THAT(*ParseSpec("postgres"), ElementsAre(Tcp(5432)));
  EXPECT_THAT(*ParseSpec("ntp"), ElementsAre(Udp(123)));
  EXPECT_THAT(*ParseSpec("ssh"), ElementsAre(Tcp(22)));
  EXPECT_THAT(*ParseSpec("dns/udp"), ElementsAre(Udp(53)));
  EXPECT_THAT(*ParseSpec("https/tcp"), ElementsAre(Tcp(443)));
}

TEST(ParseSpecTest, Errors) {
  EXPECT_EQ(ParseSpec("2000-1000").status().message(),
            "bad port range '2000-1000': low end is above high end");
  EXPECT_EQ(ParseSpec("2000-1000/udp").status().message(),
            "bad port range '2000-1000' in '2000-1000/udp': low end is above "
            "high end");
  EXPECT_EQ(ParseSpec("0/tcp").status().message(),
            "bad port '0' in '0/tcp': out of range 1-65535");
  EXPECT_EQ(ParseSpec("70000").status().message(),
            "bad port '70000': out of range 1-65535");
  EXPECT_EQ(ParseSpec("0-100").status().message(),
            "bad port range '0-100': '0' is out of range 1-65535");
  EXPECT_EQ(ParseSpec("100-x").status().message(),
            "bad port range '100-x': 'x' is not a number");
  EXPECT_EQ(ParseSpec("1-2-3").status().message(),
            "bad port range '1-2-3': '2-3' is not a number");
  EXPECT_EQ(ParseSpec("80,,443").status().message(),
            "bad port '' in '80,,443': not a number");
  EXPECT_EQ(ParseSpec("80,44x").status().message(),
            "bad port '44x' in '80,44x': not a number");
  EXPECT_EQ(ParseSpec("25/sctp").status().message(),
            "bad protocol 'sctp' in '25/sctp': expected tcp, udp or any");
  EXPECT_EQ(ParseSpec("25/").status().message(),
            "bad protocol '' in '25/': expected tcp, udp or any");
  EXPECT_EQ(ParseSpec("/tcp").status().message(),
            "missing port or service in '/tcp'");
  EXPECT_EQ(ParseSpec("ntp/tcp").status().message(),
            "service 'ntp' has no tcp port (in 'ntp/tcp')");
  EXPECT_EQ(ParseSpec("10.0.0.5").status().message(),
            "'10.0.0.5' is an address; put a service or port first, e.g. "
            "'any 10.0.0.5'");
  EXPECT_EQ(ParseSpec("10.0.0.0/8").status().message(),
            "'10.0.0.0/8' is an address; put a service or port first, e.g. "
            "'any 10.0.0.0/8'");
}

TEST(ServicesTest, UnknownServiceSuggestsCloseName) {
  EXPECT_EQ(ParseSpec("smpt").status().message(),
            "unknown service 'smpt'; did you mean 'smtp'?");
  EXPECT_EQ(ParseSpec("htps").status().message(),
            "unknown service 'htps'; did you mean 'https'?");
  EXPECT_EQ(ParseSpec("htp").status().message(),
            "unknown service 'htp'; did you mean 'http'?");
  EXPECT_EQ(ParseSpec("postgress").status().message(),
            "unknown service 'postgress'; did you mean 'postgres'?");
  EXPECT_EQ(ParseSpec("no-such-service-here").status().message(),
            "unknown service 'no-such-service-here'");
  EXPECT_EQ(ParseSpec("smpt").status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(ServicesTest, FallbackTableCoversServicesMissingFromEtcServices) {
  // memcached is not in Debian's /etc/services; the embedded table has it.
  EXPECT_THAT(*LookupService("memcached"), ElementsAre(Tcp(11211)));
  EXPECT_THAT(*LookupService("redis"), ElementsAre(Tcp(6379)));
  // Debian lists "syslog" as a tcp alias of "shell" too: /etc/services wins.
  EXPECT_THAT(*LookupService("syslog"), ::testing::Contains(Udp(514)));
  EXPECT_THAT(*LookupService("ldap"), ElementsAre(Tcp(389), Udp(389)));
}

TEST(ServicesTest, EditDistance) {
  EXPECT_EQ(EditDistance("smtp", "smtp"), 0);
  EXPECT_EQ(EditDistance("smpt", "smtp"), 1);  // transposition
  EXPECT_EQ(EditDistance("smtp", "smtps"), 1);
  EXPECT_EQ(EditDistance("", "abc"), 3);
  EXPECT_EQ(EditDistance("kitten", "sitting"), 3);
  const std::vector<std::string> names = KnownServiceNames();
  EXPECT_TRUE(std::is_sorted(names.begin(), names.end()));
  EXPECT_NE(std::find(names.begin(), names.end(), "dns"), names.end());
  EXPECT_NE(std::find(names.begin(), names.end(), "memcached"), names.end());
}

TEST_F(SpecTest, ServiceToAddress) {
  const Rule r = MustParse({"smtp", "10.0.0.5"});
  EXPECT_EQ(r.id, 0u);
  EXPECT_EQ(r.action, Action::kAllow);
  EXPECT_EQ(r.spec, "smtp");
  EXPECT_THAT(r.ports, ElementsAre(Tcp(25)));
  EXPECT_THAT(r.destinations, ElementsAre(C("10.0.0.5")));
  EXPECT_EQ(r.host, "");
  EXPECT_EQ(r.comment, "");
}

TEST_F(SpecTest, NoDestinationMeansAnywhere) {
  const Rule r = MustParse({"443/tcp"}, Action::kDeny);
  EXPECT_EQ(r.action, Action::kDeny);
  EXPECT_EQ(r.spec, "443/tcp");
  EXPECT_TRUE(r.destinations.empty());
  EXPECT_TRUE(MustParse({"443/tcp", "any"}).destinations.empty());
  EXPECT_TRUE(MustParse({"443/tcp", "anywhere"}).destinations.empty());
  EXPECT_TRUE(MustParse({"443/tcp", "to", "any"}).destinations.empty());
}

TEST_F(SpecTest, SeveralDestinationsAndOptionalTo) {
  const Rule r = MustParse({"https", "to", "10.0.0.0/8", "2001:db8::/32",
                            "10.0.0.0/8", "::ffff:1.2.3.4"});
  EXPECT_THAT(r.ports, ElementsAre(Tcp(443), Udp(443)));
  EXPECT_THAT(r.destinations,
              ElementsAre(C("10.0.0.0/8"), C("2001:db8::/32"), C("1.2.3.4")));
}

// Names are rules: kept as written (canonical), never looked up, and mixed
// freely with addresses.
TEST_F(SpecTest, NamesAreRulesNotLookups) {
  Rule r = MustParse({"443/tcp", "API.Example.org."});
  EXPECT_THAT(r.names, ElementsAre("api.example.org"));
  EXPECT_TRUE(r.destinations.empty());
  EXPECT_FALSE(r.Anywhere());
  EXPECT_EQ(r.host, "");
  r = MustParse({"https", "*.example.com", "api.example.org", "10.0.0.5",
                 "*.example.com"});
  EXPECT_THAT(r.names, ElementsAre("*.example.com", "api.example.org"));
  EXPECT_THAT(r.destinations, ElementsAre(C("10.0.0.5")));
  r = MustParse({"any", "*.tracker.example"}, Action::kDeny);
  EXPECT_THAT(r.names, ElementsAre("*.tracker.example"));
}

TEST_F(SpecTest, NameErrors) {
  EXPECT_EQ(Error({"443/tcp", "bad_host!"}),
            "'bad_host!' is not a destination: expected an address, CIDR or "
            "host name");
  EXPECT_EQ(Error({"443/tcp", "a..b"}),
            "'a..b' is not a destination: expected an address, CIDR or host "
            "name");
  EXPECT_THAT(Error({"443/tcp", "a.*.example.com"}),
              HasSubstr("is not a destination"));
  EXPECT_EQ(Error({"icmp", "api.example.org"}),
            "a name takes tcp and udp ports, not icmp: 'api.example.org'");
}

// Only a dotted name is a host name: any other word is an error naming it,
// and nothing is looked up.
TEST_F(SpecTest, UndottedWordsAreNotLookedUp) {
  EXPECT_EQ(Error({"443", "tcp"}),
            "'tcp' is not a destination: expected an address, CIDR or host "
            "name (did you mean 443/tcp?)");
  EXPECT_THAT(Error({"smtp", "udp"}), HasSubstr("did you mean smtp/udp?"));
  EXPECT_THAT(Error({"443/tcp", "udp"}), Not(HasSubstr("did you mean")));
  EXPECT_THAT(Error({"smtp", "localhost"}),
              HasSubstr("did you mean 127.0.0.1 or ::1?"));
  EXPECT_THAT(Error({"smtp", "mailhost"}),
              HasSubstr("'mailhost' is not a destination"));
  EXPECT_THAT(Error({"smtp", "mailhost"}),
              HasSubstr("fully qualified, e.g. 'mailhost.example.org'"));
  EXPECT_THAT(Error({"smtp", "https"}),
              HasSubstr("one service or port per rule"));
  EXPECT_THAT(Error({"out", "proto", "tcp", "to", "relay", "port", "25"}),
              HasSubstr("'relay' is not a destination"));
  // A fully qualified name with its root dot is a name.
  EXPECT_THAT(MustParse({"443/tcp", "nowhere.example.org."}).names,
              ElementsAre("nowhere.example.org"));
}

TEST_F(SpecTest, InterfaceWordsSayThereAreNone) {
  EXPECT_EQ(Error({"out", "on", "eth0", "to", "10.0.0.1", "port", "25"}),
            "egress has no per-interface rules: a rule applies to every "
            "outgoing connection of the target's processes, on any "
            "interface; leave out 'on eth0'");
  EXPECT_THAT(Error({"in", "on", "eth0", "22/tcp"}),
              HasSubstr("only controls outgoing"));
  EXPECT_THAT(Error({"in", "on", "eth0", "22/tcp"}),
              HasSubstr("no per-interface rules"));
  EXPECT_THAT(Error({"smtp", "on", "eth0"}), HasSubstr("leave out 'on eth0'"));
  // "on" as the comment is text.
  EXPECT_EQ(MustParse({"smtp", "10.0.0.5", "comment", "on"}).comment, "on");
}

TEST_F(SpecTest, DestinationErrors) {
  EXPECT_EQ(Error({"443/tcp", "10.0.0.1/8"}),
            "10.0.0.1/8: host bits set; did you mean 10.0.0.0/8?");
  EXPECT_EQ(Error({"443/tcp", "10.0.0.256"}), "bad address '10.0.0.256'");
  EXPECT_EQ(Error({"443/tcp", "10.0.0.0/8", "any"}),
            "'any' cannot be combined with other destinations");
  EXPECT_EQ(Error({"443/tcp", "anywhere", "api.example.org"}),
            "'anywhere' cannot be combined with other destinations");
}

TEST_F(SpecTest, IcmpAnyRaw) {
  Rule r = MustParse({"icmp", "10.0.0.0/8"});
  EXPECT_THAT(r.ports, ElementsAre(kIcmp));
  r = MustParse({"any", "169.254.169.254"}, Action::kDeny);
  EXPECT_EQ(r.spec, "any");
  EXPECT_THAT(r.ports, ElementsAre(Tcp(0, 65535), Udp(0, 65535), kIcmp));
  EXPECT_THAT(r.destinations, ElementsAre(C("169.254.169.254")));
  r = MustParse({"raw"});
  EXPECT_THAT(r.ports, ElementsAre(kRaw));
  EXPECT_TRUE(r.destinations.empty());
  r = MustParse({"raw", "comment", "tcpdump"});
  EXPECT_EQ(r.comment, "tcpdump");
  EXPECT_EQ(Error({"raw", "10.0.0.1"}), "raw takes no destination: '10.0.0.1'");
  EXPECT_EQ(Error({"raw", "any"}), "raw takes no destination: 'any'");
}

TEST_F(SpecTest, CommentAfterShortForm) {
  Rule r = MustParse({"smtp", "10.0.0.5", "comment", "mail relay"});
  EXPECT_EQ(r.comment, "mail relay");
  EXPECT_THAT(r.destinations, ElementsAre(C("10.0.0.5")));
  r = MustParse({"smtp", "comment", "mail relay 2"});
  EXPECT_EQ(r.comment, "mail relay 2");
  EXPECT_TRUE(r.destinations.empty());
  EXPECT_EQ(Error({"smtp", "comment"}), "'comment' needs a text after it");
  EXPECT_EQ(Error({"comment", "x"}),
            "missing service or port before 'comment'");
}

// No destination means anywhere, so a "to" left without one ("443 to $IP"
// with IP unset) must fail, as it does in the long form.
TEST_F(SpecTest, ToWithoutADestinationIsAnErrorNotAnywhere) {
  const std::string kMessage =
      "'to' needs an address, network or host name after it";
  EXPECT_EQ(Error({"443", "to"}), kMessage);
  EXPECT_EQ(Error({"443/tcp", "to", "comment", "web"}), kMessage);
  EXPECT_EQ(Error({"out", "443", "to"}), kMessage);
  EXPECT_EQ(Error({"out", "to"}), kMessage);
  EXPECT_TRUE(MustParse({"443", "to", "any"}).Anywhere());
  EXPECT_THAT(MustParse({"443", "to", "192.0.2.1"}).destinations,
              ElementsAre(C("192.0.2.1")));
}

// A dotted word of digits and '-' passes the host name syntax, but no real
// name ends in a label starting with a digit: an address range typed as a
// destination is an error, never a name rule.
TEST_F(SpecTest, AddressLikeWordsAreNotNames) {
  for (const auto& words : std::vector<std::vector<std::string>>{
           {"any", "192.0.2.0-255"},
           {"443", "10.0.0.1-10.0.0.5"},
           {"443", "*.10.0.0"},
           {"out", "to", "192.0.2.0-255", "port", "443"}}) {
    const std::string message = Error(words);
    EXPECT_THAT(message, HasSubstr("looks like an address or address range"))
        << words[1];
    EXPECT_THAT(message, HasSubstr("192.0.2.0/24")) << words[1];
  }
  EXPECT_THAT(
      MustParse({"443", "a1.example.com", "*.example.com", "example.xn--p1ai"})
          .names,
      ElementsAre("a1.example.com", "*.example.com", "example.xn--p1ai"));
}

// As in UFW, the comment is one argument and comes last: taking every word
// after "comment" swallowed destinations typed after it, leaving a rule for
// anywhere.
TEST_F(SpecTest, CommentIsOneArgumentAndComesLast) {
  const std::string message =
      Error({"443", "comment", "web", "server", "to", "192.0.2.1"});
  EXPECT_THAT(message,
              HasSubstr("'comment' takes one argument and comes last"));
  EXPECT_THAT(message, HasSubstr("'server' follows 'web'"));
  EXPECT_THAT(message, HasSubstr("quote a comment of several words"));
  EXPECT_THAT(Error({"out", "to", "192.0.2.1", "comment", "a", "b"}),
              HasSubstr("quote a comment of several words"));
  const Rule r = MustParse({"443", "192.0.2.1", "comment", "web server"});
  EXPECT_EQ(r.comment, "web server");
  EXPECT_THAT(r.destinations, ElementsAre(C("192.0.2.1")));
  EXPECT_EQ(Error({"443", "comment", ""}), "'comment' needs a text after it");
}

// `list` prints a comment as it is: a newline would fake a rule line, an
// escape sequence would reach the terminal.
TEST_F(SpecTest, ControlCharactersInACommentAreRefused) {
  for (const char* text : {"web\n   1 ALLOW any anywhere", "a\tb", "\x1b[2J",
                           "del\x7f", "\xc2\x9b[2J", "\r"}) {
    EXPECT_THAT(Error({"443", "192.0.2.1", "comment", text}),
                HasSubstr("the comment holds a control character"))
        << text;
  }
  EXPECT_EQ(Error({"443", "comment", "a\nb"}),
            "the comment holds a control character (U+000A) at byte 2; a "
            "comment is one line of printable text");
  for (const char* text : {"caf\xc3\xa9", "no\xc2\xa0space", "~!\"'"}) {
    EXPECT_EQ(MustParse({"443", "comment", text}).comment, text);
  }
}

TEST_F(SpecTest, ShortFormErrorsNameTheWord) {
  EXPECT_EQ(Error({}),
            "empty rule: expected a service, port, 'any', 'icmp' or 'raw'");
  EXPECT_EQ(Error({"smpt", "10.0.0.5"}),
            "unknown service 'smpt'; did you mean 'smtp'?");
  EXPECT_EQ(Error({"2000-1000/tcp"}),
            "bad port range '2000-1000' in '2000-1000/tcp': low end is above "
            "high end");
  EXPECT_EQ(Error({"10.0.0.5"}),
            "'10.0.0.5' is an address; put a service or port first, e.g. "
            "'any 10.0.0.5'");
}

TEST_F(SpecTest, UfwLongForm) {
  Rule r = MustParse({"out", "proto", "tcp", "to", "10.0.0.5", "port", "25"});
  EXPECT_EQ(r.spec, "25/tcp");
  EXPECT_THAT(r.ports, ElementsAre(Tcp(25)));
  EXPECT_THAT(r.destinations, ElementsAre(C("10.0.0.5")));

  r = MustParse({"out", "to", "10.0.0.0/8", "port", "53"});
  EXPECT_EQ(r.spec, "53");
  EXPECT_THAT(r.ports, ElementsAre(Tcp(53), Udp(53)));

  r = MustParse({"proto", "udp", "port", "1000:2000"});
  EXPECT_EQ(r.spec, "1000:2000/udp");
  EXPECT_THAT(r.ports, ElementsAre(Udp(1000, 2000)));
  EXPECT_TRUE(r.destinations.empty());

  r = MustParse({"out", "proto", "any", "port", "80,443"});
  EXPECT_THAT(r.ports, ElementsAre(Tcp(80), Tcp(443), Udp(80), Udp(443)));

  r = MustParse({"out", "to", "169.254.169.254"}, Action::kDeny);
  EXPECT_EQ(r.spec, "any");
  EXPECT_THAT(r.ports, ElementsAre(Tcp(0, 65535), Udp(0, 65535), kIcmp));

  r = MustParse({"out", "proto", "tcp", "to", "10.0.0.0/8"});
  EXPECT_EQ(r.spec, "tcp");
  EXPECT_THAT(r.ports, ElementsAre(Tcp(0, 65535)));

  r = MustParse({"out", "proto", "icmp", "to", "2001:db8::/32"});
  EXPECT_EQ(r.spec, "icmp");
  EXPECT_THAT(r.ports, ElementsAre(kIcmp));

  r = MustParse({"to", "api.example.org", "port", "https", "proto", "tcp",
                 "comment", "vendor api"});
  EXPECT_EQ(r.spec, "https/tcp");
  EXPECT_THAT(r.ports, ElementsAre(Tcp(443)));
  EXPECT_THAT(r.names, ElementsAre("api.example.org"));
  EXPECT_EQ(r.comment, "vendor api");

  r = MustParse({"out", "from", "any", "to", "any", "port", "smtp"});
  EXPECT_THAT(r.ports, ElementsAre(Tcp(25)));
  EXPECT_TRUE(r.destinations.empty());
}

// UFW's "from any port N" is a source port. Egress rules match the
// destination only: reading N as the destination port (as before) turned
// "allow out proto tcp from any port 1234" into an allow of 1234/tcp to
// every address.
TEST_F(SpecTest, SourcePortIsRefusedNotTakenAsDestination) {
  const std::string kSourcePort1234 =
      "'from ... port 1234' names a source port, which egress cannot match: "
      "rules match the destination only, the source is always this host. "
      "For destination port 1234 write 'to ADDRESS port 1234' (or 'to any "
      "port 1234')";
  EXPECT_EQ(Error({"out", "proto", "tcp", "from", "any", "port", "1234"}),
            kSourcePort1234);
  EXPECT_EQ(Error({"out", "from", "any", "port", "1234", "to", "10.0.0.1",
                   "port", "80"}),
            kSourcePort1234);
  EXPECT_EQ(Error({"out", "from", "anywhere", "port", "1234", "to", "any"}),
            kSourcePort1234);
  EXPECT_THAT(Error({"out", "from", "any", "port", "5353"}),
              HasSubstr("'from ... port 5353' names a source port"));
  EXPECT_THAT(Error({"out", "to", "any", "from", "any", "port", "53"}),
              HasSubstr("names a source port"));
  EXPECT_THAT(Error({"from", "any", "port"}), HasSubstr("names a source port"));
  EXPECT_THAT(Error({"out", "from", "any", "proto", "udp", "port", "53"}),
              HasSubstr("names a source port"));
  // Every other source is refused too, in both forms.
  EXPECT_THAT(Error({"out", "from", "10.0.0.1", "port", "1234"}),
              HasSubstr("'from' only takes 'any'"));
  EXPECT_THAT(Error({"from", "10.0.0.0/8", "to", "any", "port", "80"}),
              HasSubstr("'from' only takes 'any'"));
  EXPECT_EQ(Error({"443", "from", "10.0.0.1"}),
            "'from' is not a destination: expected an address, CIDR or host "
            "name ('from' names a source, which egress cannot match: rules "
            "match the destination, the source is always this host)");
  EXPECT_THAT(Error({"out", "443/tcp", "from", "any"}),
              HasSubstr("'from' names a source"));

  // A port after 'to' (or before any 'from') is the destination's.
  Rule r = MustParse({"out", "from", "any", "to", "10.0.0.1", "port", "80"});
  EXPECT_THAT(r.ports, ElementsAre(Tcp(80), Udp(80)));
  EXPECT_THAT(r.destinations, ElementsAre(C("10.0.0.1")));
  r = MustParse({"out", "proto", "tcp", "port", "80", "from", "any"});
  EXPECT_THAT(r.ports, ElementsAre(Tcp(80)));
  EXPECT_TRUE(r.destinations.empty());
}

TEST_F(SpecTest, OutBeforeShortForm) {
  const Rule r = MustParse({"out", "443/tcp", "10.0.0.0/8"});
  EXPECT_EQ(r.spec, "443/tcp");
  EXPECT_THAT(r.ports, ElementsAre(Tcp(443)));
  EXPECT_THAT(r.destinations, ElementsAre(C("10.0.0.0/8")));
}

TEST_F(SpecTest, InboundIsRejected) {
  const std::string kMessage =
      "egressctl only controls outgoing connections; accepted inbound "
      "connections are never affected";
  EXPECT_EQ(Error({"in", "proto", "tcp", "port", "22"}), kMessage);
  EXPECT_EQ(Error({"in", "22"}), kMessage);
  EXPECT_EQ(Error({"proto", "tcp", "in", "port", "22"}), kMessage);
}

TEST_F(SpecTest, LongFormErrors) {
  EXPECT_EQ(Error({"out"}),
            "'out' needs a rule after it, e.g. 'out proto tcp to 10.0.0.5 "
            "port 25'");
  EXPECT_EQ(Error({"out", "proto", "sctp", "port", "25"}),
            "bad protocol 'sctp' after 'proto': expected tcp, udp, any or "
            "icmp");
  EXPECT_EQ(Error({"out", "proto"}),
            "'proto' needs a protocol (tcp, udp, any or icmp) after it");
  EXPECT_EQ(Error({"out", "to", "port", "25"}),
            "'to' needs an address, network or host name after it");
  EXPECT_EQ(Error({"out", "port"}),
            "'port' needs a port, port range or service after it");
  EXPECT_EQ(Error({"out", "port", "25", "port", "26"}), "'port' given twice");
  EXPECT_EQ(Error({"out", "proto", "tcp", "port", "25", "extra"}),
            "unexpected word 'extra'; expected proto, to, port or comment");
  EXPECT_EQ(Error({"proto", "tcp", "out"}),
            "unexpected word 'out'; expected proto, to, port or comment");
  EXPECT_EQ(Error({"out", "proto", "icmp", "port", "25"}),
            "icmp has no ports: 'port 25'");
  EXPECT_EQ(Error({"out", "port", "25/tcp"}),
            "bad port '25/tcp': give the protocol with 'proto'");
  EXPECT_EQ(Error({"out", "proto", "tcp", "port", "0"}),
            "bad port '0': out of range 1-65535");
  EXPECT_EQ(Error({"out", "proto", "udp", "port", "smtp"}),
            "service 'smtp' has no udp port (in 'smtp')");
  EXPECT_EQ(Error({"out", "from", "10.0.0.1", "to", "any"}),
            "'from' only takes 'any': rules match the destination, the "
            "source is always this host");
  EXPECT_EQ(Error({"out", "to", "10.0.0.1/8"}),
            "10.0.0.1/8: host bits set; did you mean 10.0.0.0/8?");
  EXPECT_EQ(Error({"out", "proto", "tcp", "comment"}),
            "'comment' needs a text after it");
}

}  // namespace
}  // namespace egress::policy
