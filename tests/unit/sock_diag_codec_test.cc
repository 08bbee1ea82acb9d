// The sock_diag codec on byte buffers laid out as the kernel lays them out
// (include/uapi/linux/inet_diag.h, net/ipv4/inet_diag.c): requests byte by
// byte, dumps with attributes, errors and malformed messages.
#include "userspace/kernel/sock_diag_codec.h"

#include <arpa/inet.h>
#include <errno.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <cstring>

#include "tests/testing/diag_sockets.h"
#include "tests/testing/status_matchers.h"

namespace egress {
namespace {

using ::testing::HasSubstr;

// Appends netlink messages and attributes to a datagram.
class Datagram {
 public:
  // Starts a message; its length is fixed by End().
  Datagram& Begin(uint16_t type, uint32_t seq) {
    start_ = bytes_.size();
    nlmsghdr h{};
    h.nlmsg_type = type;
    h.nlmsg_seq = seq;
    h.nlmsg_flags = NLM_F_MULTI;
    Put(&h, sizeof(h));
    return *this;
  }
  Datagram& Put(const void* data, size_t n) {
    const auto* p = static_cast<const uint8_t*>(data);
    bytes_.insert(bytes_.end(), p, p + n);
    return *this;
  }
  Datagram& Align() {
    bytes_.resize(NLMSG_ALIGN(bytes_.size()), 0);
    return *this;
  }
  Datagram& Attr(uint16_t type, const void* data, uint16_t n) {
    nlattr a{static_cast<uint16_t>(NLA_HDRLEN + n), type};
    Put(&a, sizeof(a)).Put(data, n);
    bytes_.resize(bytes_.size() + (NLA_ALIGN(n) - n), 0);
    return *this;
  }
  Datagram& End() {
    const uint32_t len = static_cast<uint32_t>(bytes_.size() - start_);
    std::memcpy(bytes_.data() + start_, &len, sizeof(len));
    return Align();
  }
  Datagram& Error(uint16_t type, uint32_t seq, int error) {
    return Begin(type, seq).Put(&error, sizeof(error)).End();
  }
  const std::vector<uint8_t>& bytes() const { return bytes_; }

 private:
  std::vector<uint8_t> bytes_;
  size_t start_ = 0;
};

inet_diag_msg Reply(uint8_t family, const char* src, uint16_t sport,
                    const char* dst, uint16_t dport) {
  inet_diag_msg m{};
  m.idiag_family = family;
  m.idiag_state = TCP_ESTABLISHED;
  m.id = testing::SockId(family, src, sport, dst, dport);
  m.id.idiag_cookie[0] = 0x11223344;
  m.id.idiag_cookie[1] = 0x55;
  m.idiag_uid = 1000;
  m.idiag_inode = 4242;
  return m;
}

// A reply as the kernel sends it: inet_diag_msg, INET_DIAG_SHUTDOWN, then
// (unless 0) INET_DIAG_CGROUP_ID.
Datagram& PutSocket(Datagram& d, uint32_t seq, const inet_diag_msg& m,
                    uint64_t cgroup_id) {
  const uint8_t shutdown = 0;
  d.Begin(SOCK_DIAG_BY_FAMILY, seq).Put(&m, sizeof(m)).Align();
  d.Attr(INET_DIAG_SHUTDOWN, &shutdown, 1);
  if (cgroup_id != 0) d.Attr(INET_DIAG_CGROUP_ID, &cgroup_id, 8);
  return d.End();
}

// The header and the inet_diag_req_v2 of a request.
struct Parts {
  nlmsghdr h;
  inet_diag_req_v2 req;
};
Parts PartsOf(const std::vector<uint8_t>& msg) {
  Parts p;
  EXPECT_GE(msg.size(), NLMSG_HDRLEN + sizeof(p.req));
  std::memcpy(&p.h, msg.data(), sizeof(p.h));
  std::memcpy(&p.req, msg.data() + NLMSG_HDRLEN, sizeof(p.req));
  return p;
}

TEST(SockDiagCodecTest, DumpRequestIsAnInetDiagReqV2) {
  const uint32_t states = 1u << TCP_ESTABLISHED | 1u << TCP_LISTEN;
  std::vector<uint8_t> msg = DumpRequest(AF_INET6, IPPROTO_TCP, states, 7);
  ASSERT_EQ(msg.size(), NLMSG_SPACE(sizeof(inet_diag_req_v2)));
  const auto [h, req] = PartsOf(msg);
  EXPECT_EQ(h.nlmsg_len, NLMSG_LENGTH(sizeof(inet_diag_req_v2)));
  EXPECT_EQ(h.nlmsg_type, SOCK_DIAG_BY_FAMILY);
  EXPECT_EQ(h.nlmsg_flags, NLM_F_REQUEST | NLM_F_DUMP);
  EXPECT_EQ(h.nlmsg_seq, 7u);
  EXPECT_EQ(req.sdiag_family, AF_INET6);
  EXPECT_EQ(req.sdiag_protocol, IPPROTO_TCP);
  EXPECT_EQ(req.idiag_ext, 0);
  EXPECT_EQ(req.idiag_states, states);
  // The raw layout the kernel reads: family, protocol, ext, pad, states.
  EXPECT_EQ(msg[NLMSG_HDRLEN + 0], AF_INET6);
  EXPECT_EQ(msg[NLMSG_HDRLEN + 1], IPPROTO_TCP);
}

TEST(SockDiagCodecTest, DestroyRequestEchoesTheDumpedIdentity) {
  DiagSocket s;
  s.family = AF_INET;
  s.protocol = IPPROTO_UDP;
  s.id = Reply(AF_INET, "127.0.0.1", 5000, "127.0.0.2", 53).id;
  const auto [h, req] = PartsOf(DestroyRequest(s, 9));
  EXPECT_EQ(h.nlmsg_type, SOCK_DESTROY);
  EXPECT_EQ(h.nlmsg_flags, NLM_F_REQUEST | NLM_F_ACK);
  EXPECT_EQ(h.nlmsg_seq, 9u);
  EXPECT_EQ(req.sdiag_family, AF_INET);
  EXPECT_EQ(req.sdiag_protocol, IPPROTO_UDP);
  EXPECT_EQ(std::memcmp(&req.id, &s.id, sizeof(s.id)), 0);
}

TEST(SockDiagCodecTest, ParsesSocketsCgroupIdsAndTheEnd) {
  Datagram d;
  PutSocket(d, 3, Reply(AF_INET, "127.0.0.1", 51234, "127.0.0.9", 40001),
            0xabcdef0123ull);
  PutSocket(d, 3, Reply(AF_INET6, "::1", 40000, "2001:db8::7", 443), 0);
  d.Error(NLMSG_DONE, 3, 0);
  ASSERT_OK_AND_ASSIGN(DiagBatch b, ParseDump(d.bytes(), IPPROTO_TCP, 3));
  EXPECT_TRUE(b.done);
  ASSERT_EQ(b.sockets.size(), 2u);
  const DiagSocket& v4 = b.sockets[0];
  EXPECT_EQ(v4.family, AF_INET);
  EXPECT_EQ(v4.protocol, IPPROTO_TCP);
  EXPECT_EQ(v4.state, TCP_ESTABLISHED);
  EXPECT_EQ(v4.source_port(), 51234);
  EXPECT_EQ(v4.destination_port(), 40001);
  EXPECT_EQ(v4.destination()[0], 127);
  EXPECT_EQ(v4.destination()[3], 9);
  EXPECT_EQ(v4.uid, 1000u);
  EXPECT_EQ(v4.inode, 4242u);
  EXPECT_EQ(v4.cookie(), 0x5511223344ull);
  EXPECT_EQ(v4.cgroup_id, std::optional<uint64_t>(0xabcdef0123ull));
  const DiagSocket& v6 = b.sockets[1];
  EXPECT_EQ(v6.family, AF_INET6);
  EXPECT_EQ(v6.destination_port(), 443);
  EXPECT_EQ(v6.destination()[0], 0x20);
  EXPECT_EQ(v6.destination()[15], 7);
  EXPECT_FALSE(v6.cgroup_id.has_value());
}

TEST(SockDiagCodecTest, MessagesOfAnotherRequestAreSkipped) {
  Datagram d;
  PutSocket(d, 2, Reply(AF_INET, "127.0.0.1", 1, "127.0.0.2", 2), 5);
  d.Error(NLMSG_DONE, 2, 0);
  ASSERT_OK_AND_ASSIGN(DiagBatch b, ParseDump(d.bytes(), IPPROTO_TCP, 3));
  EXPECT_TRUE(b.sockets.empty());
  EXPECT_FALSE(b.done);
}

TEST(SockDiagCodecTest, KernelErrorsBecomeTheirStatus) {
  Datagram denied;
  denied.Error(NLMSG_ERROR, 4, -EPERM);
  absl::StatusOr<DiagBatch> b = ParseDump(denied.bytes(), IPPROTO_TCP, 4);
  EXPECT_EQ(b.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(b.status().message(), HasSubstr("sock_diag dump"));
  Datagram done_with_error;
  done_with_error.Error(NLMSG_DONE, 4, -ENOENT);
  EXPECT_EQ(ParseDump(done_with_error.bytes(), IPPROTO_UDP, 4).status().code(),
            absl::StatusCode::kNotFound);
}

TEST(SockDiagCodecTest, MalformedDatagramsAreErrorsNotCrashes) {
  Datagram good;
  PutSocket(good, 1, Reply(AF_INET, "127.0.0.1", 1, "127.0.0.2", 2), 5);
  std::vector<uint8_t> bytes = good.bytes();
  // Cut inside the message: it claims more than there is.
  std::vector<uint8_t> cut(bytes.begin(), bytes.end() - 8);
  EXPECT_THAT(ParseDump(cut, IPPROTO_TCP, 1).status().message(),
              HasSubstr("claims"));
  // Shorter than a header.
  std::vector<uint8_t> stub(bytes.begin(), bytes.begin() + 10);
  EXPECT_EQ(ParseDump(stub, IPPROTO_TCP, 1).status().code(),
            absl::StatusCode::kInvalidArgument);
  // A reply too short for inet_diag_msg.
  Datagram short_reply;
  const uint32_t word = 0;
  short_reply.Begin(SOCK_DIAG_BY_FAMILY, 1).Put(&word, 4).End();
  EXPECT_THAT(ParseDump(short_reply.bytes(), IPPROTO_TCP, 1).status().message(),
              HasSubstr("shorter than inet_diag_msg"));
  // An attribute claiming more than the message holds: ignored, no cgroup.
  Datagram bad_attr;
  inet_diag_msg m = Reply(AF_INET, "127.0.0.1", 1, "127.0.0.2", 2);
  nlattr a{200, INET_DIAG_CGROUP_ID};
  bad_attr.Begin(SOCK_DIAG_BY_FAMILY, 1).Put(&m, sizeof(m)).Align();
  bad_attr.Put(&a, sizeof(a)).End();
  ASSERT_OK_AND_ASSIGN(DiagBatch b,
                       ParseDump(bad_attr.bytes(), IPPROTO_TCP, 1));
  ASSERT_EQ(b.sockets.size(), 1u);
  EXPECT_FALSE(b.sockets[0].cgroup_id.has_value());
}

TEST(SockDiagCodecTest, AcknowledgementsOfDestroy) {
  Datagram ok;
  ok.Error(NLMSG_ERROR, 5, 0);
  EXPECT_OK(ParseAck(ok.bytes(), 5));
  Datagram gone;
  gone.Error(NLMSG_ERROR, 5, -ENOENT);
  EXPECT_EQ(ParseAck(gone.bytes(), 5).code(), absl::StatusCode::kNotFound);
  Datagram other;
  other.Error(NLMSG_ERROR, 6, 0);
  EXPECT_THAT(ParseAck(other.bytes(), 5).message(),
              HasSubstr("no acknowledgement"));
}

}  // namespace
}  // namespace egress
