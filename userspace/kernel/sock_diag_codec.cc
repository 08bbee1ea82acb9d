#include "userspace/kernel/sock_diag_codec.h"

#include <arpa/inet.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <sys/socket.h>

#include <cstring>

#include "absl/strings/str_cat.h"
#include "userspace/common/errno_status.h"

namespace egress {
namespace {

// A request: the netlink header and an inet_diag_req_v2, nothing after.
std::vector<uint8_t> Request(uint16_t type, uint16_t flags, uint32_t seq,
                             const inet_diag_req_v2& req) {
  nlmsghdr h{};
  h.nlmsg_len = NLMSG_LENGTH(sizeof(req));
  h.nlmsg_type = type;
  h.nlmsg_flags = flags;
  h.nlmsg_seq = seq;
  std::vector<uint8_t> out(NLMSG_SPACE(sizeof(req)), 0);
  std::memcpy(out.data(), &h, sizeof(h));
  std::memcpy(out.data() + NLMSG_HDRLEN, &req, sizeof(req));
  return out;
}

// The error of an NLMSG_ERROR payload (0 = an acknowledgement).
absl::StatusOr<int> ErrorOf(absl::Span<const uint8_t> payload) {
  int error = 0;
  if (payload.size() < sizeof(error)) {
    return absl::InvalidArgumentError("sock_diag: truncated NLMSG_ERROR");
  }
  std::memcpy(&error, payload.data(), sizeof(error));
  return error;
}

// The attributes after an inet_diag_msg: only INET_DIAG_CGROUP_ID is kept.
void ParseAttributes(absl::Span<const uint8_t> attrs, DiagSocket* s) {
  size_t off = 0;
  while (off + NLA_HDRLEN <= attrs.size()) {
    nlattr a;
    std::memcpy(&a, attrs.data() + off, sizeof(a));
    if (a.nla_len < NLA_HDRLEN || off + a.nla_len > attrs.size()) return;
    const uint16_t type = a.nla_type & NLA_TYPE_MASK;
    if (type == INET_DIAG_CGROUP_ID && a.nla_len >= NLA_HDRLEN + 8) {
      uint64_t id = 0;
      std::memcpy(&id, attrs.data() + off + NLA_HDRLEN, sizeof(id));
      s->cgroup_id = id;
    }
    off += NLA_ALIGN(a.nla_len);
  }
}

absl::StatusOr<DiagSocket> ParseSocket(absl::Span<const uint8_t> payload,
                                       uint8_t protocol) {
  inet_diag_msg m;
  if (payload.size() < sizeof(m)) {
    return absl::InvalidArgumentError(
        absl::StrCat("sock_diag: reply of ", payload.size(),
                     " bytes is shorter than inet_diag_msg"));
  }
  std::memcpy(&m, payload.data(), sizeof(m));
  DiagSocket s;
  s.family = m.idiag_family;
  s.protocol = protocol;
  s.state = m.idiag_state;
  s.id = m.id;
  s.uid = m.idiag_uid;
  s.inode = m.idiag_inode;
  const size_t attrs = NLMSG_ALIGN(sizeof(m));
  if (payload.size() > attrs) ParseAttributes(payload.subspan(attrs), &s);
  return s;
}

// Calls `fn(header, payload)` for each message of a datagram; stops at the
// first error `fn` returns. InvalidArgument for a malformed message.
template <typename Fn>
absl::Status ForEachMessage(absl::Span<const uint8_t> datagram, Fn fn) {
  size_t off = 0;
  while (off < datagram.size()) {
    nlmsghdr h;
    if (datagram.size() - off < sizeof(h)) {
      return absl::InvalidArgumentError(
          absl::StrCat("sock_diag: ", datagram.size() - off,
                       " trailing bytes are shorter than a netlink header"));
    }
    std::memcpy(&h, datagram.data() + off, sizeof(h));
    if (h.nlmsg_len < NLMSG_HDRLEN || h.nlmsg_len > datagram.size() - off) {
      return absl::InvalidArgumentError(
          absl::StrCat("sock_diag: message claims ", h.nlmsg_len, " bytes, ",
                       datagram.size() - off, " left"));
    }
    absl::Status st =
        fn(h, datagram.subspan(off + NLMSG_HDRLEN, h.nlmsg_len - NLMSG_HDRLEN));
    if (!st.ok()) return st;
    off += NLMSG_ALIGN(h.nlmsg_len);
  }
  return absl::OkStatus();
}

}  // namespace

uint16_t DiagSocket::source_port() const { return ntohs(id.idiag_sport); }
uint16_t DiagSocket::destination_port() const { return ntohs(id.idiag_dport); }

std::array<uint8_t, 16> DiagSocket::source() const {
  std::array<uint8_t, 16> a;
  std::memcpy(a.data(), id.idiag_src, a.size());
  return a;
}

std::array<uint8_t, 16> DiagSocket::destination() const {
  std::array<uint8_t, 16> a;
  std::memcpy(a.data(), id.idiag_dst, a.size());
  return a;
}

uint64_t DiagSocket::cookie() const {
  return uint64_t{id.idiag_cookie[1]} << 32 | id.idiag_cookie[0];
}

std::vector<uint8_t> DumpRequest(uint8_t family, uint8_t protocol,
                                 uint32_t states, uint32_t seq) {
  inet_diag_req_v2 req{};
  req.sdiag_family = family;
  req.sdiag_protocol = protocol;
  req.idiag_states = states;
  // INET_DIAG_CGROUP_ID needs no extension bit: it comes with every socket.
  return Request(SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST | NLM_F_DUMP, seq, req);
}

std::vector<uint8_t> DestroyRequest(const DiagSocket& socket, uint32_t seq) {
  inet_diag_req_v2 req{};
  req.sdiag_family = socket.family;
  req.sdiag_protocol = socket.protocol;
  req.idiag_states = ~0U;
  req.id = socket.id;
  return Request(SOCK_DESTROY, NLM_F_REQUEST | NLM_F_ACK, seq, req);
}

absl::StatusOr<DiagBatch> ParseDump(absl::Span<const uint8_t> datagram,
                                    uint8_t protocol, uint32_t seq) {
  DiagBatch batch;
  absl::Status st = ForEachMessage(
      datagram,
      [&](const nlmsghdr& h,
          absl::Span<const uint8_t> payload) -> absl::Status {
        if (h.nlmsg_seq != seq || batch.done) return absl::OkStatus();
        if (h.nlmsg_type == NLMSG_DONE || h.nlmsg_type == NLMSG_ERROR) {
          absl::StatusOr<int> error = ErrorOf(payload);
          if (!error.ok()) return error.status();
          if (*error < 0) return ErrnoStatus(-*error, "sock_diag dump");
          batch.done = h.nlmsg_type == NLMSG_DONE;
          return absl::OkStatus();
        }
        if (h.nlmsg_type != SOCK_DIAG_BY_FAMILY) return absl::OkStatus();
        absl::StatusOr<DiagSocket> s = ParseSocket(payload, protocol);
        if (!s.ok()) return s.status();
        batch.sockets.push_back(*s);
        return absl::OkStatus();
      });
  if (!st.ok()) return st;
  return batch;
}

absl::Status ParseAck(absl::Span<const uint8_t> datagram, uint32_t seq) {
  std::optional<int> ack;
  absl::Status st =
      ForEachMessage(datagram,
                     [&](const nlmsghdr& h,
                         absl::Span<const uint8_t> payload) -> absl::Status {
                       if (h.nlmsg_seq != seq || h.nlmsg_type != NLMSG_ERROR) {
                         return absl::OkStatus();
                       }
                       absl::StatusOr<int> error = ErrorOf(payload);
                       if (!error.ok()) return error.status();
                       ack = *error;
                       return absl::OkStatus();
                     });
  if (!st.ok()) return st;
  if (!ack) {
    return absl::InvalidArgumentError(
        absl::StrCat("sock_diag: no acknowledgement of request ", seq));
  }
  if (*ack < 0) return ErrnoStatus(-*ack, "sock_diag destroy");
  return absl::OkStatus();
}

}  // namespace egress
