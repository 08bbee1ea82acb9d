// How egressd tells that a target resolves without DNS sockets of its own:
// the parsers of nsswitch.conf, resolv.conf and nscd.conf, and the warnings
// of a view read from a fixture directory (never the machine's files).
#include "userspace/daemon/resolver_check.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <future>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "userspace/common/fs.h"
#include "userspace/common/root_file.h"
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

// A target owns its view: a FIFO, a device, a huge file or a symlink out of
// the view is never read from (and nothing blocks); only what is wrong is
// said.
class HostileResolverViewTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir[] = "/tmp/egress-hostile-view-XXXXXX";
    ASSERT_NE(mkdtemp(dir), nullptr);
    top_ = dir;
    root_ = top_ + "/root";
    for (const std::string& d : {root_, root_ + "/etc", top_ + "/outside"}) {
      ASSERT_EQ(mkdir(d.c_str(), 0755), 0) << d;
    }
  }
  void TearDown() override { EXPECT_TRUE(RemoveTree(top_).ok()); }

  // ReadResolverView(root_), failing (and unblocking a FIFO reader) when it
  // takes more than 5 s.
  ResolverView ReadBounded() {
    auto read = std::async(std::launch::async,
                           [this] { return ReadResolverView(root_); });
    if (read.wait_for(std::chrono::seconds(5)) != std::future_status::ready) {
      ADD_FAILURE() << "ReadResolverView blocked";
      // A writer that comes and goes ends a reader blocked on the FIFO.
      for (const char* f : {"/etc/nsswitch.conf", "/etc/resolv.conf"}) {
        int fd = open((root_ + f).c_str(), O_WRONLY | O_NONBLOCK);
        if (fd >= 0) close(fd);
      }
    }
    return read.get();
  }

  std::string top_, root_;
};

TEST_F(HostileResolverViewTest, FifoIsNotOpened) {
  ASSERT_EQ(mkfifo((root_ + "/etc/nsswitch.conf").c_str(), 0644), 0);
  Write(root_ + "/etc/resolv.conf", "nameserver 127.0.0.1\n");
  ResolverView v = ReadBounded();
  ASSERT_THAT(v.unreadable, ElementsAre(HasSubstr("a FIFO")));
  EXPECT_THAT(v.unreadable[0], HasSubstr("/etc/nsswitch.conf"));
  // Nothing else is concluded from a view that hides part of itself.
  EXPECT_THAT(ResolverWarnings(v, {}),
              ElementsAre(HasSubstr("hides how it resolves: ")));
}

TEST_F(HostileResolverViewTest, DeviceIsNotRead) {
  // A symlink to /dev/zero names the view's /dev/zero, not egressd's: this
  // view has none.
  ASSERT_EQ(symlink("/dev/zero", (root_ + "/etc/nsswitch.conf").c_str()), 0);
  ResolverView v = ReadBounded();
  EXPECT_THAT(v.unreadable, IsEmpty());
  EXPECT_EQ(v.hosts_sources, std::nullopt);
  // A view that has one (a bind of a host's /dev, as under "/" here): the
  // device is looked at, never opened or read.
  absl::StatusOr<UniqueFd> slash = OpenRootDir("/");
  ASSERT_TRUE(slash.ok());
  absl::StatusOr<std::string> zero =
      ReadFileInRoot(slash->get(), "/dev/zero", kMaxConfigBytes);
  ASSERT_FALSE(zero.ok());
  EXPECT_THAT(zero.status().message(), HasSubstr("a character device"));
}

TEST_F(HostileResolverViewTest, AbsoluteSymlinkStaysInTheView) {
  // The same absolute name outside the view and inside it.
  const std::string outside = top_ + "/outside/resolv.conf";
  Write(outside, "nameserver 10.9.9.9\n");
  ASSERT_EQ(symlink(outside.c_str(), (root_ + "/etc/resolv.conf").c_str()), 0);
  ResolverView v = ReadBounded();
  EXPECT_THAT(v.nameservers, IsEmpty());  // not the host's file
  EXPECT_THAT(v.unreadable, IsEmpty());
  // The view's own file of that name is the one read.
  ASSERT_TRUE(MakeDirs(root_ + top_ + "/outside", 0755).ok());
  Write(root_ + outside, "nameserver 10.1.1.1\n");
  EXPECT_THAT(ReadBounded().nameservers, ElementsAre("10.1.1.1"));
  // ".." cannot climb out either.
  ASSERT_EQ(unlink((root_ + "/etc/resolv.conf").c_str()), 0);
  ASSERT_EQ(symlink("../../../../../../outside/resolv.conf",
                    (root_ + "/etc/resolv.conf").c_str()),
            0);
  EXPECT_THAT(ReadBounded().nameservers, IsEmpty());
}

TEST_F(HostileResolverViewTest, HugeFileIsNotRead) {
  Write(root_ + "/etc/nsswitch.conf",
        "hosts: files dns\n" + std::string(1 << 20, '#'));
  ResolverView v = ReadBounded();
  EXPECT_EQ(v.hosts_sources, std::nullopt);
  EXPECT_THAT(v.unreadable, ElementsAre(HasSubstr("more than the 65536")));
}

TEST_F(HostileResolverViewTest, PlainFilesAreRead) {
  Write(root_ + "/etc/nsswitch.conf", "hosts: dns files\n");
  Write(root_ + "/etc/resolv.conf", "nameserver 127.0.0.1\n");
  ResolverView v = ReadBounded();
  EXPECT_THAT(v.unreadable, IsEmpty());
  EXPECT_THAT(v.hosts_sources, Optional(ElementsAre("dns", "files")));
  EXPECT_THAT(v.nameservers, ElementsAre("127.0.0.1"));
}

}  // namespace
}  // namespace egress
