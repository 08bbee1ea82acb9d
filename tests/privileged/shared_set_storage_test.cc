// What one shared program set for every cgroup target would rely on, proven
// on the running kernel with the test-only object bpf/shared_set_probe.bpf.c:
// a BPF_MAP_TYPE_CGROUP_STORAGE keyed by cgroup id gives each attachment of
// one loaded program its own target id, which userspace writes after the
// attach. Real cgroups, real sockets on loopback.
//
// Not exercised here, on purpose: BPF_LINK_UPDATE from a program without a
// cgroup storage to one with it. The kernel then runs the new program with
// no storage at all (a known NULL dereference in bpf_get_local_storage,
// syzbot e6e8f6618a2d4b35e4e0, unfixed upstream in mid-2025), so moving a
// cgroup from a per-target instance to a shared set must attach the new
// links and then drop the old ones, never swap a link's program.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "egress/abi.h"
#include "gtest/gtest.h"
#include "tests/testing/cgroup_fixture.h"
#include "tests/testing/listeners.h"
#include "tests/testing/privileges.h"
#include "tests/testing/run_in_cgroup.h"
#include "tests/testing/socket_probes.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/unix_sockets.h"
#include "userspace/common/errno_status.h"
#include "userspace/common/unique_fd.h"
#include "userspace/kernel/unix_hooks.h"
// After egress/abi.h, like every skeleton include.
#include "shared_set_probe.skel.h"

namespace egress::testing {
namespace {

// seen[] slots, as bpf/shared_set_probe.bpf.c numbers them.
enum Slot : uint32_t {
  kConnect4,
  kSendmsg4,
  kRecvmsg4,
  kSockCreate,
  kSetsockopt,
  kSkbEgress,
  kSkbIngress,
  kSockOps,
  kConnectUnix,
  kSlotCount,
};

constexpr uint32_t kAllowedTarget = 1;
constexpr uint32_t kDeniedTarget = 2;
constexpr char kUnixName[] = "@egress-shared-set-probe";

struct SkelDeleter {
  void operator()(shared_set_probe* s) const { shared_set_probe__destroy(s); }
};

class SharedSetStorageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    EGRESS_REQUIRE_ROOT();
    skel_.reset(shared_set_probe__open());
    ASSERT_NE(skel_, nullptr) << "open shared_set_probe: errno " << errno;
    unix_ = KernelHasUnixHooks();
    bpf_program* unix_prog = skel_->progs.probe_connect_unix;
    if (unix_) {
      ASSERT_EQ(
          bpf_program__set_type(unix_prog, BPF_PROG_TYPE_CGROUP_SOCK_ADDR), 0);
      ASSERT_EQ(bpf_program__set_expected_attach_type(
                    unix_prog, static_cast<bpf_attach_type>(
                                   EGRESS_ATTACH_CGROUP_UNIX_CONNECT)),
                0);
    } else {
      bpf_program__set_autoload(unix_prog, false);
    }
    // The verifier accepts bpf_get_local_storage in every program type a
    // target's set has (sock_addr incl. unix, sock, sockopt, skb, sock_ops).
    ASSERT_EQ(shared_set_probe__load(skel_.get()), 0)
        << "load shared_set_probe: errno " << errno;
    const uint32_t allow = 1;
    ASSERT_EQ(bpf_map__update_elem(skel_->maps.allowed, &kAllowedTarget,
                                   sizeof(kAllowedTarget), &allow,
                                   sizeof(allow), BPF_ANY),
              0);
    ASSERT_OK_AND_ASSIGN(listener_, TcpListener::Create());
  }

  // A link of `prog` at `cgroup` (BPF_F_ALLOW_MULTI semantics, like egressd's).
  absl::StatusOr<UniqueFd> Attach(bpf_program* prog, const TestCgroup& cgroup,
                                  uint32_t attach_type) {
    UniqueFd dir(open(cgroup.path().c_str(), O_RDONLY | O_DIRECTORY));
    if (dir.get() < 0) return ErrnoStatus(errno, "open", cgroup.path());
    const int link =
        bpf_link_create(bpf_program__fd(prog), dir.get(),
                        static_cast<bpf_attach_type>(attach_type), nullptr);
    if (link < 0) return ErrnoStatus(errno, "bpf_link_create", cgroup.path());
    return UniqueFd(link);
  }

  // Every program of the set at `cgroup`, as a target's set would be.
  absl::StatusOr<std::vector<UniqueFd>> AttachAll(const TestCgroup& cgroup) {
    struct Hook {
      bpf_program* prog;
      uint32_t type;
    };
    std::vector<Hook> hooks = {
        {skel_->progs.probe_connect4, BPF_CGROUP_INET4_CONNECT},
        {skel_->progs.probe_sendmsg4, BPF_CGROUP_UDP4_SENDMSG},
        {skel_->progs.probe_recvmsg4, BPF_CGROUP_UDP4_RECVMSG},
        {skel_->progs.probe_sock_create, BPF_CGROUP_INET_SOCK_CREATE},
        {skel_->progs.probe_setsockopt, BPF_CGROUP_SETSOCKOPT},
        {skel_->progs.probe_skb_egress, BPF_CGROUP_INET_EGRESS},
        {skel_->progs.probe_skb_ingress, BPF_CGROUP_INET_INGRESS},
        {skel_->progs.probe_sock_ops, BPF_CGROUP_SOCK_OPS},
    };
    if (unix_) {
      hooks.push_back(
          {skel_->progs.probe_connect_unix, EGRESS_ATTACH_CGROUP_UNIX_CONNECT});
    }
    std::vector<UniqueFd> links;
    for (const Hook& h : hooks) {
      auto link = Attach(h.prog, cgroup, h.type);
      if (!link.ok()) return link.status();
      links.push_back(std::move(*link));
    }
    return links;
  }

  // The target id of the attachments at `cgroup`: NotFound while no program
  // of the set was ever attached there.
  absl::Status WriteTarget(const TestCgroup& cgroup, uint32_t id) {
    const uint64_t key = cgroup.id();
    if (bpf_map__update_elem(skel_->maps.attach_target, &key, sizeof(key), &id,
                             sizeof(id), BPF_ANY) != 0) {
      return ErrnoStatus(errno, "write attach_target", cgroup.path());
    }
    return absl::OkStatus();
  }
  absl::StatusOr<uint32_t> ReadTarget(const TestCgroup& cgroup) {
    const uint64_t key = cgroup.id();
    uint32_t id = 0;
    if (bpf_map__lookup_elem(skel_->maps.attach_target, &key, sizeof(key), &id,
                             sizeof(id), 0) != 0) {
      return ErrnoStatus(errno, "read attach_target", cgroup.path());
    }
    return id;
  }

  // The ids the program of `slot` saw since the last call, oldest first
  // (their low bytes; at most 8), and forgets them.
  std::vector<uint32_t> TakeSeen(uint32_t slot) {
    uint64_t history = 0;
    bpf_map__lookup_elem(skel_->maps.seen, &slot, sizeof(slot), &history,
                         sizeof(history), 0);
    const uint64_t zero = 0;
    bpf_map__update_elem(skel_->maps.seen, &slot, sizeof(slot), &zero,
                         sizeof(zero), BPF_ANY);
    std::vector<uint32_t> out;
    for (; history != 0; history >>= 8) {
      out.insert(out.begin(), static_cast<uint32_t>(history & 0xff));
    }
    return out;
  }
  void ForgetSeen() {
    for (uint32_t s = 0; s < kSlotCount; ++s) TakeSeen(s);
  }

  absl::StatusOr<int> Connect(const TestCgroup& cgroup) {
    const uint16_t port = listener_->port();
    return RunInCgroup(cgroup.path(),
                       [port] { return TcpConnect("127.0.0.1", port); });
  }

  std::unique_ptr<shared_set_probe, SkelDeleter> skel_;
  bool unix_ = false;
  std::unique_ptr<TcpListener> listener_;
};

// A TCP connect with a socket option set, a UDP datagram to itself read
// back, and a unix connect: every hook of the set runs. 0, or the errno of
// the first step that failed.
int EveryHook(uint16_t tcp_port, bool with_unix) {
  UniqueFd tcp(socket(AF_INET, SOCK_STREAM, 0));
  const int one = 1;
  if (tcp.get() < 0 ||
      setsockopt(tcp.get(), SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one)) != 0) {
    return errno;
  }
  sockaddr_in dst = MakeSockaddrIn("127.0.0.1", tcp_port);
  if (connect(tcp.get(), reinterpret_cast<sockaddr*>(&dst), sizeof(dst)) != 0) {
    return errno;
  }
  if (write(tcp.get(), "x", 1) != 1) return errno;
  UniqueFd udp(socket(AF_INET, SOCK_DGRAM, 0));
  sockaddr_in self = MakeSockaddrIn("127.0.0.1", 0);
  socklen_t len = sizeof(self);
  if (udp.get() < 0 ||
      bind(udp.get(), reinterpret_cast<sockaddr*>(&self), sizeof(self)) != 0 ||
      getsockname(udp.get(), reinterpret_cast<sockaddr*>(&self), &len) != 0 ||
      sendto(udp.get(), "x", 1, 0, reinterpret_cast<sockaddr*>(&self),
             sizeof(self)) != 1) {
    return errno;
  }
  char byte;
  sockaddr_in from{};
  len = sizeof(from);
  if (recvfrom(udp.get(), &byte, 1, 0, reinterpret_cast<sockaddr*>(&from),
               &len) != 1) {
    return errno;
  }
  if (with_unix) return UnixConnect(SOCK_STREAM, kUnixName);
  return 0;
}

TEST_F(SharedSetStorageTest, EveryHookTypeReadsTheTargetOfItsAttachment) {
  ASSERT_OK_AND_ASSIGN(auto cg, TestCgroup::Create("sharedset-hooks"));
  std::unique_ptr<UnixServer> server;
  if (unix_) {
    ASSERT_OK_AND_ASSIGN(server, UnixServer::Create(SOCK_STREAM, kUnixName));
  }
  ASSERT_OK_AND_ASSIGN(std::vector<UniqueFd> links, AttachAll(*cg));
  // One storage for every hook at the cgroup (the key has no attach type):
  // one write serves them all.
  ASSERT_OK(WriteTarget(*cg, kAllowedTarget));
  ForgetSeen();
  const uint16_t port = listener_->port();
  const bool with_unix = unix_;
  ASSERT_OK_AND_ASSIGN(int err, RunInCgroup(cg->path(), [port, with_unix] {
                         return EveryHook(port, with_unix);
                       }));
  EXPECT_EQ(err, 0);
  std::vector<uint32_t> slots = {kConnect4,   kSendmsg4,   kRecvmsg4,
                                 kSockCreate, kSetsockopt, kSkbEgress,
                                 kSkbIngress, kSockOps};
  if (unix_) slots.push_back(kConnectUnix);
  for (uint32_t slot : slots) {
    std::vector<uint32_t> seen = TakeSeen(slot);
    ASSERT_FALSE(seen.empty()) << "slot " << slot << " never ran";
    for (uint32_t id : seen) EXPECT_EQ(id, kAllowedTarget) << "slot " << slot;
  }
}

TEST_F(SharedSetStorageTest, UnwrittenTargetDenies) {
  ASSERT_OK_AND_ASSIGN(auto cg, TestCgroup::Create("sharedset-unwritten"));
  // No storage before the first attach: the id can only be written after
  // the programs are live at the cgroup.
  EXPECT_TRUE(absl::IsNotFound(WriteTarget(*cg, kAllowedTarget)));
  ASSERT_OK_AND_ASSIGN(UniqueFd link, Attach(skel_->progs.probe_connect4, *cg,
                                             BPF_CGROUP_INET4_CONNECT));
  // Between the attach and the write the storage is zero, and zero denies.
  ASSERT_OK_AND_ASSIGN(uint32_t id, ReadTarget(*cg));
  EXPECT_EQ(id, 0u);
  ASSERT_OK_AND_ASSIGN(int err, Connect(*cg));
  EXPECT_EQ(err, EPERM);
  ASSERT_OK(WriteTarget(*cg, kAllowedTarget));
  ASSERT_OK_AND_ASSIGN(err, Connect(*cg));
  EXPECT_EQ(err, 0);
}

TEST_F(SharedSetStorageTest, TwoTargetsOnOneSetKeepTheirOwnPolicy) {
  ASSERT_OK_AND_ASSIGN(auto allowed, TestCgroup::Create("sharedset-allowed"));
  ASSERT_OK_AND_ASSIGN(auto denied, TestCgroup::Create("sharedset-denied"));
  ASSERT_OK_AND_ASSIGN(TestCgroup * inner, allowed->CreateChild("inner"));
  std::vector<UniqueFd> links;
  for (TestCgroup* cg : {allowed.get(), denied.get()}) {
    for (auto [prog, type] :
         {std::pair{skel_->progs.probe_connect4, BPF_CGROUP_INET4_CONNECT},
          std::pair{skel_->progs.probe_sendmsg4, BPF_CGROUP_UDP4_SENDMSG}}) {
      ASSERT_OK_AND_ASSIGN(UniqueFd link, Attach(prog, *cg, type));
      links.push_back(std::move(link));
    }
  }
  ASSERT_OK(WriteTarget(*allowed, kAllowedTarget));
  ASSERT_OK(WriteTarget(*denied, kDeniedTarget));
  const uint16_t port = listener_->port();
  auto udp = [port] { return UdpSendto("127.0.0.1", port); };
  ASSERT_OK_AND_ASSIGN(int err, Connect(*allowed));
  EXPECT_EQ(err, 0);
  ASSERT_OK_AND_ASSIGN(err, Connect(*denied));
  EXPECT_EQ(err, EPERM);
  ASSERT_OK_AND_ASSIGN(err, RunInCgroup(allowed->path(), udp));
  EXPECT_EQ(err, 0);
  ASSERT_OK_AND_ASSIGN(err, RunInCgroup(denied->path(), udp));
  EXPECT_EQ(err, EPERM);
  // A descendant cgroup runs the program of its ancestor's attachment, with
  // that attachment's storage.
  ForgetSeen();
  ASSERT_OK_AND_ASSIGN(err, Connect(*inner));
  EXPECT_EQ(err, 0);
  EXPECT_EQ(TakeSeen(kConnect4), std::vector<uint32_t>{kAllowedTarget});
}

TEST_F(SharedSetStorageTest, NestedAttachmentsEachReadTheirOwn) {
  ASSERT_OK_AND_ASSIGN(auto outer, TestCgroup::Create("sharedset-nested"));
  ASSERT_OK_AND_ASSIGN(TestCgroup * inner, outer->CreateChild("inner"));
  ASSERT_OK_AND_ASSIGN(
      UniqueFd outer_link,
      Attach(skel_->progs.probe_connect4, *outer, BPF_CGROUP_INET4_CONNECT));
  ASSERT_OK_AND_ASSIGN(
      UniqueFd inner_link,
      Attach(skel_->progs.probe_connect4, *inner, BPF_CGROUP_INET4_CONNECT));
  ASSERT_OK(WriteTarget(*outer, kAllowedTarget));
  ASSERT_OK(WriteTarget(*inner, kDeniedTarget));
  ForgetSeen();
  // Both attachments run for the inner cgroup (its own first, then its
  // ancestor's; every one runs even after a deny), each with its own
  // target: the inner target's policy denies.
  ASSERT_OK_AND_ASSIGN(int err, Connect(*inner));
  EXPECT_EQ(err, EPERM);
  EXPECT_EQ(TakeSeen(kConnect4),
            (std::vector<uint32_t>{kDeniedTarget, kAllowedTarget}));
  ASSERT_OK_AND_ASSIGN(err, Connect(*outer));
  EXPECT_EQ(err, 0);
  EXPECT_EQ(TakeSeen(kConnect4), std::vector<uint32_t>{kAllowedTarget});
}

// Why two targets at one cgroup cannot both use the shared set: a second
// link of the same program at the same cgroup is accepted, and shares the
// first one's storage (the last id written wins for both).
TEST_F(SharedSetStorageTest, SecondLinkAtOneCgroupSharesTheStorage) {
  ASSERT_OK_AND_ASSIGN(auto cg, TestCgroup::Create("sharedset-twice"));
  ASSERT_OK_AND_ASSIGN(UniqueFd first, Attach(skel_->progs.probe_connect4, *cg,
                                              BPF_CGROUP_INET4_CONNECT));
  ASSERT_OK(WriteTarget(*cg, kAllowedTarget));
  ASSERT_OK_AND_ASSIGN(UniqueFd second, Attach(skel_->progs.probe_connect4, *cg,
                                               BPF_CGROUP_INET4_CONNECT));
  ASSERT_OK_AND_ASSIGN(uint32_t id, ReadTarget(*cg));
  EXPECT_EQ(id, kAllowedTarget);
  ASSERT_OK(WriteTarget(*cg, kDeniedTarget));
  ForgetSeen();
  ASSERT_OK_AND_ASSIGN(int err, Connect(*cg));
  EXPECT_EQ(err, EPERM);
  EXPECT_EQ(TakeSeen(kConnect4),
            (std::vector<uint32_t>{kDeniedTarget, kDeniedTarget}));
}

// The storage lives as long as the cgroup (or the map), not the links: a
// cgroup attached again reads the id written before, from its first call.
// So a set re-attached for a different target must have its id written
// before the attach (which then succeeds), not only after.
TEST_F(SharedSetStorageTest, StorageOutlivesTheLinks) {
  ASSERT_OK_AND_ASSIGN(auto cg, TestCgroup::Create("sharedset-outlives"));
  {
    ASSERT_OK_AND_ASSIGN(UniqueFd link, Attach(skel_->progs.probe_connect4, *cg,
                                               BPF_CGROUP_INET4_CONNECT));
    ASSERT_OK(WriteTarget(*cg, kDeniedTarget));
  }
  ASSERT_OK_AND_ASSIGN(uint32_t id, ReadTarget(*cg));
  EXPECT_EQ(id, kDeniedTarget);
  ASSERT_OK(WriteTarget(*cg, kAllowedTarget));  // no link at the cgroup now
  ASSERT_OK_AND_ASSIGN(UniqueFd again, Attach(skel_->progs.probe_connect4, *cg,
                                              BPF_CGROUP_INET4_CONNECT));
  ForgetSeen();
  ASSERT_OK_AND_ASSIGN(int err, Connect(*cg));
  EXPECT_EQ(err, 0);
  EXPECT_EQ(TakeSeen(kConnect4), std::vector<uint32_t>{kAllowedTarget});
}

}  // namespace
}  // namespace egress::testing
