// How egressd tells that a target resolves without DNS sockets of its own:
// the parsers of nsswitch.conf, resolv.conf and nscd.conf, and the warnings
// of a view read from a fixture directory (never the machine's files).
#include "userspace/daemon/resolver_check.h"

#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "userspace/common/fs.h"
#include "userspace/policy/rule.h"

namespace egress {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Optional;

TEST(ResolverCheckTest, NsswitchHostsSourcesSkipActionsAndComments) {
  EXPECT_THAT(NsswitchHostsSources("# x\npasswd: files\nhosts:  files "
                                   "resolve [!UNAVAIL=return] dns # end\n"),
              Optional(ElementsAre("files", "resolve", "dns")));
  EXPECT_THAT(NsswitchHostsSources("hosts: files [NOTFOUND=return success=co"
                                   "ntinue] mdns4_minimal DNS\n"),
              Optional(ElementsAre("files", "mdns4_minimal", "dns")));
  EXPECT_EQ(NsswitchHostsSources("passwd: files\n"), std::nullopt);
}

TEST(ResolverCheckTest, ResolvConfAndNscdConf) {
  EXPECT_THAT(ResolvConfNameservers("search x\nnameserver 127.0.0.53\n"
                                    "# nameserver 10.0.0.1\n"
                                    "nameserver fe80::1%eth0\n"),
              ElementsAre("127.0.0.53", "fe80::1"));
  EXPECT_EQ(NscdCachesHosts("enable-cache passwd yes\n"), std::nullopt);
  EXPECT_THAT(NscdCachesHosts("\tenable-cache\thosts\tno\n"), Optional(false));
  EXPECT_THAT(NscdCachesHosts("enable-cache hosts yes\n"), Optional(true));
}

policy::Rule AllowDns(const std::string& addr) {
  policy::Rule r;
  r.ports = {{policy::Proto::kUdp, 53, 53}};
  r.destinations = {*policy::Cidr::Parse(addr)};
  return r;
}

TEST(ResolverCheckTest, WarningsOfEachWayAround) {
  const std::vector<policy::Rule> rules = {AllowDns("127.0.0.53")};
  ResolverView learns;
  learns.hosts_sources = std::vector<std::string>{"files", "dns"};
  learns.nameservers = {"127.0.0.53"};
  // resolved's socket without nss-resolve before dns: glibc sends DNS.
  learns.resolved_socket = true;
  EXPECT_THAT(ResolverWarnings(learns, rules), IsEmpty());

  ResolverView resolved = learns;
  resolved.hosts_sources = std::vector<std::string>{"files", "resolve", "dns"};
  EXPECT_THAT(ResolverWarnings(resolved, rules),
              ElementsAre(HasSubstr("resolves through systemd-resolved")));
  resolved.resolved_socket = false;  // resolved down: nss-resolve falls back
  EXPECT_THAT(ResolverWarnings(resolved, rules), IsEmpty());

  ResolverView nscd = learns;
  nscd.nscd_socket = true;
  EXPECT_THAT(ResolverWarnings(nscd, rules),
              ElementsAre(HasSubstr("sees nscd's socket")));
  nscd.nscd_hosts_cache = false;
  EXPECT_THAT(ResolverWarnings(nscd, rules), IsEmpty());

  ResolverView other = learns;
  other.nameservers = {"10.9.9.9"};
  EXPECT_THAT(ResolverWarnings(other, rules),
              ElementsAre(HasSubstr("asks the resolver 10.9.9.9 (resolv.conf), "
                                    "which no rule allows on 53/udp")));
  // No "dns" source: resolv.conf is never read.
  other.hosts_sources = std::vector<std::string>{"files"};
  EXPECT_THAT(ResolverWarnings(other, rules), IsEmpty());
}

void Write(const std::string& path, const std::string& text) {
  std::ofstream(path) << text;
}

TEST(ResolverCheckTest, ReadsTheViewUnderARoot) {
  char dir[] = "/tmp/egress-resolver-view-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  const std::string root = dir;
  for (const char* d : {"/etc", "/var", "/var/run", "/var/run/nscd"}) {
    ASSERT_EQ(mkdir((root + d).c_str(), 0755), 0) << d;
  }
  Write(root + "/etc/nsswitch.conf", "hosts: files dns\n");
  Write(root + "/etc/resolv.conf", "nameserver 127.0.0.1\n");
  Write(root + "/etc/nscd.conf", "enable-cache hosts yes\n");
  // A plain file where the socket goes is no socket.
  Write(root + "/var/run/nscd/socket", "");
  ResolverView v = ReadResolverView(root);
  EXPECT_THAT(v.hosts_sources, Optional(ElementsAre("files", "dns")));
  EXPECT_THAT(v.nameservers, ElementsAre("127.0.0.1"));
  EXPECT_THAT(v.nscd_hosts_cache, Optional(true));
  EXPECT_FALSE(v.nscd_socket);
  EXPECT_FALSE(v.resolved_socket);
  unlink((root + "/var/run/nscd/socket").c_str());
  const int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::snprintf(a.sun_path, sizeof(a.sun_path), "%s/var/run/nscd/socket",
                root.c_str());
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  EXPECT_TRUE(ReadResolverView(root).nscd_socket);
  close(fd);
  EXPECT_TRUE(RemoveTree(root).ok());
}

}  // namespace
}  // namespace egress
