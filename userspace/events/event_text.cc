#include "userspace/events/event_text.h"

#include <arpa/inet.h>

#include <cstdint>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/time/time.h"

namespace egress {
namespace {

// "Nov 24 17:51:43.371": wall-clock time, UTC, to the millisecond.
std::string When(const EventRecord& r) {
  const int64_t unix_ns = RecordUnixNs(r.raw, r.ctx.realtime_offset_ns);
  return absl::FormatTime("%b %d %H:%M:%E3S", absl::FromUnixNanos(unix_ns),
                          absl::UTCTimeZone());
}

// "python3[21873] ", or "" when the record has no task (flows).
std::string Who(const egress_event& e) {
  std::string comm = CommText(e);
  if (comm.empty()) return "";
  return absl::StrCat(comm, "[", e.tgid, "] ");
}

// The destination ("-> [2001:db8::1]:53/udp", "-> unix:/run/x.sock stream")
// or, for refusals that have none, what was refused.
std::string What(const egress_event& e) {
  const bool flow = e.kind != EGRESS_EVENT_VERDICT &&
                    e.kind != EGRESS_EVENT_HELD_BACK &&
                    e.kind != EGRESS_EVENT_SELF_CHECK_FAILED;
  if (!flow && e.hook == EGRESS_HOOK_SETSOCKOPT) {
    return e.reason == EGRESS_REASON_NONLOCAL_SOURCE
               ? "setsockopt nonlocal source"
               : "setsockopt source route";
  }
  if (!flow && e.hook == EGRESS_HOOK_SOCK_CREATE) {
    return absl::StrCat("socket ", ProtoLabel(e.proto), " type ",
                        static_cast<unsigned>(e.sock_type));
  }
  if (!flow && e.family == EGRESS_FAMILY_UNIX) {
    return absl::StrCat("-> unix:", UnixPathText(e), " ",
                        UnixSockType(e.sock_type));
  }
  std::string dest = EventAddress(e);
  if (dest.find(':') != std::string::npos) dest = absl::StrCat("[", dest, "]");
  // Flow records are TCP whatever the proto field says (as in the JSON).
  const bool tcp_flow = flow && !IsExistingKind(e);
  return absl::StrCat("-> ", dest, ":", ntohs(e.port), "/",
                      tcp_flow ? "tcp" : ProtoLabel(e.proto));
}

// "no matching rule", or for a flow "closed outbound, sent 1 B, received
// 2 B".
std::string Detail(const egress_event& e) {
  const absl::string_view event = EventLiteral(e);
  if (event == "established" || event == "closed") {
    std::string detail = absl::StrCat(
        event, " ",
        e.direction == EGRESS_DIR_OUTBOUND ? "outbound" : "inbound");
    if (event == "closed") {
      absl::StrAppend(&detail, ", sent ", e.bytes_sent, " B, received ",
                      e.bytes_received, " B");
    }
    return detail;
  }
  std::string detail = absl::AsciiStrToLower(ReasonName(e.reason));
  absl::StrReplaceAll({{"_", " "}}, &detail);
  if (event == "existing") return absl::StrCat("existing connection, ", detail);
  if (event == "cut") return absl::StrCat("existing connection cut, ", detail);
  return detail;
}

}  // namespace

std::string RenderText(const EventRecord& record) {
  const egress_event& e = record.raw;
  std::string detail = Detail(e);
  // Names are canonical rule names (letters, digits, '-', '_', '.', '*').
  if (!record.ctx.destination_names.empty()) {
    absl::StrAppend(&detail, ", name ",
                    absl::StrJoin(record.ctx.destination_names, ", "));
  } else if (!record.ctx.unlearned_names.empty()) {
    absl::StrAppend(&detail, ", never an answer for ",
                    absl::StrJoin(record.ctx.unlearned_names, ", "));
  }
  std::string out =
      absl::StrCat(When(record), " ", AsciiOnly(record.ctx.target), " ");
  if (!record.ctx.container.pod_name.empty()) {
    absl::StrAppend(&out, "pod ", AsciiOnly(record.ctx.container.pod_namespace),
                    "/", AsciiOnly(record.ctx.container.pod_name), " ");
  }
  if (!record.ctx.container.name.empty()) {
    absl::StrAppend(&out, "container ", AsciiOnly(record.ctx.container.name),
                    " (", AsciiOnly(record.ctx.container.image), ") ");
  }
  absl::StrAppend(&out, Who(e), What(e), " ", VerdictName(e.verdict), " (",
                  detail, ")");
  if (e.suppressed > 0)
    absl::StrAppend(&out, " +", e.suppressed, " suppressed");
  return out;
}

}  // namespace egress
