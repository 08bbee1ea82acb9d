// RenderText() renders a record's text from the record itself. Before, the
// text came from the record's JSON tree (EventText, kept below as the
// reference): the bytes must be the same for every kind of record.
#include "userspace/events/event_text.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "userspace/events/event_json.h"

namespace egress {
namespace {

// The text form as egressctl computed it from a JSON record until the
// daemon rendered it (the former EventText of event_json.cc, unchanged).
std::string LegacyEventText(const nlohmann::json& j) {
  auto str = [&](const nlohmann::json& v) {
    return v.is_string() ? v.get<std::string>() : v.dump();
  };
  std::string when;
  absl::Time t;
  std::string err;
  if (j.contains("time") &&
      absl::ParseTime("%Y-%m-%dT%H:%M:%E*SZ", str(j["time"]), &t, &err)) {
    when = absl::FormatTime("%b %d %H:%M:%E3S", t, absl::UTCTimeZone());
  }
  std::string who;
  if (j.contains("process")) {
    const auto& p = j["process"];
    std::string comm = str(p.value("comm", nlohmann::json("")));
    if (!comm.empty()) {
      who =
          absl::StrCat(comm, "[", str(p.value("pid", nlohmann::json(0))), "] ");
    }
  }
  std::string what;
  if (j.contains("l4")) {
    const auto& l4 = j["l4"];
    std::string dest = str(l4.value("destination", nlohmann::json("")));
    if (dest.find(':') != std::string::npos)
      dest = absl::StrCat("[", dest, "]");
    what = absl::StrCat("-> ", dest, ":",
                        str(l4.value("destination_port", nlohmann::json(0))),
                        "/", str(l4.value("protocol", nlohmann::json(""))));
  } else if (j.contains("socket") && j["socket"].contains("option")) {
    what = j["socket"]["option"] == "nonlocal_source"
               ? "setsockopt nonlocal source"
               : "setsockopt source route";
  } else if (j.contains("socket")) {
    what = absl::StrCat(
        "socket ", str(j["socket"].value("protocol", nlohmann::json(""))),
        " type ", str(j["socket"].value("type", nlohmann::json(0))));
  }
  std::string event = str(j.value("event", nlohmann::json("")));
  std::string verdict = str(j.value("verdict", nlohmann::json("")));
  std::string detail;
  if (event == "established" || event == "closed") {
    const auto& f = j["flow"];
    detail =
        absl::StrCat(event, " ", str(f.value("direction", nlohmann::json(""))));
    if (event == "closed") {
      absl::StrAppend(&detail, ", sent ",
                      str(f.value("bytes_sent", nlohmann::json(0))),
                      " B, received ",
                      str(f.value("bytes_received", nlohmann::json(0))), " B");
    }
  } else {
    std::string reason = str(j.value("reason", nlohmann::json("")));
    detail = absl::AsciiStrToLower(reason);
    absl::StrReplaceAll({{"_", " "}}, &detail);
  }
  std::string out = absl::StrCat(
      when, when.empty() ? "" : " ", str(j.value("target", nlohmann::json(""))),
      " ", who, what, " ", verdict, " (", detail, ")");
  uint64_t suppressed = j.value("suppressed", 0ull);
  if (suppressed > 0) absl::StrAppend(&out, " +", suppressed, " suppressed");
  return out;
}

template <typename T>
T Pick(std::mt19937_64& rng, const std::vector<T>& choices) {
  return choices[rng() % choices.size()];
}

// Records of every kind, with known and unknown enum values, odd names and
// times from 1970 to 2262.
EventRecord RandomRecord(std::mt19937_64& rng) {
  EventRecord r;
  egress_event& e = r.raw;
  e.kind = Pick<uint8_t>(
      rng, {EGRESS_EVENT_VERDICT, EGRESS_EVENT_VERDICT,
            EGRESS_EVENT_FLOW_ESTABLISHED, EGRESS_EVENT_FLOW_CLOSED, 9});
  e.hook = static_cast<uint8_t>(rng() % 10);
  e.verdict = static_cast<uint8_t>(rng() % 6);
  e.reason = static_cast<uint8_t>(rng() % 12);
  e.family = Pick<uint8_t>(rng, {EGRESS_FAMILY_IPV4, EGRESS_FAMILY_IPV6});
  e.proto = Pick<uint8_t>(rng, {IPPROTO_TCP, IPPROTO_UDP, IPPROTO_ICMP,
                                IPPROTO_ICMPV6, IPPROTO_RAW, 136, 0});
  for (uint8_t& b : e.addr) b = static_cast<uint8_t>(rng());
  e.port = static_cast<uint16_t>(rng());
  e.local_port = static_cast<uint16_t>(rng());
  e.sock_type = static_cast<uint8_t>(rng() % 6);
  e.direction = static_cast<uint8_t>(rng() % 2);
  e.tgid = static_cast<uint32_t>(rng());
  e.pid = static_cast<uint32_t>(rng());
  e.suppressed = rng() % 2 ? 0 : static_cast<uint32_t>(rng());
  e.bytes_sent = rng() >> (rng() % 64);
  e.bytes_received = rng() >> (rng() % 64);
  e.ts_ns = rng() >> 2;
  const std::string comm = Pick<std::string>(
      rng, {"", "curl", "a\"b\\c\nd\te", "\xff\xfe-x", "0123456789abcdef"});
  std::memcpy(e.comm, comm.data(), std::min(comm.size(), sizeof(e.comm)));
  r.ctx.target = Pick<std::string>(rng, {"", "web",
                                         "w\xc3\xa9"
                                         "b",
                                         "a b"});
  r.ctx.cgroup_path = "/system.slice/web.service";
  r.ctx.node_name = "host1";
  r.ctx.realtime_offset_ns =
      Pick<int64_t>(rng, {0, 1'700'000'000'000'000'000, 999'999'999});
  r.ctx.rule_number = rng() % 3;
  return r;
}

TEST(EventTextTest, SameBytesAsTheJsonBasedTextForManyRecords) {
  std::mt19937_64 rng(20261124);
  for (int i = 0; i < 20000; ++i) {
    const EventRecord r = RandomRecord(rng);
    const nlohmann::json j = EventToJson(r.raw, r.ctx);
    ASSERT_EQ(RenderText(r), LegacyEventText(j)) << j.dump();
    ASSERT_EQ(j["message"], RenderText(r));
  }
}

TEST(EventTextTest, ClosedFlowAndSocketRefusal) {
  EventRecord flow;
  flow.raw.kind = EGRESS_EVENT_FLOW_CLOSED;
  flow.raw.hook = EGRESS_HOOK_SOCK_OPS;
  flow.raw.verdict = EGRESS_VERDICT_ALLOW;
  flow.raw.family = EGRESS_FAMILY_IPV4;
  flow.raw.port = htons(443);
  flow.raw.bytes_sent = 1000;
  flow.raw.bytes_received = 52311;
  inet_pton(AF_INET, "192.0.2.10", flow.raw.addr);
  flow.ctx.target = "web";
  EXPECT_EQ(RenderText(flow),
            "Jan 01 00:00:00.000 web -> 192.0.2.10:443/tcp ALLOWED (closed "
            "outbound, sent 1000 B, received 52311 B)");

  EventRecord raw;
  raw.raw.hook = EGRESS_HOOK_SOCK_CREATE;
  raw.raw.verdict = EGRESS_VERDICT_DENY;
  raw.raw.reason = EGRESS_REASON_SOCKET_TYPE;
  raw.raw.proto = IPPROTO_ICMP;
  raw.raw.sock_type = 3;
  raw.raw.tgid = 21873;
  raw.raw.suppressed = 3;
  std::strcpy(raw.raw.comm, "ping");
  raw.ctx.target = "web";
  EXPECT_EQ(RenderText(raw),
            "Jan 01 00:00:00.000 web ping[21873] socket icmp type 3 DENIED "
            "(socket type blocked) +3 suppressed");

  EventRecord freebind;
  freebind.raw.hook = EGRESS_HOOK_SETSOCKOPT;
  freebind.raw.verdict = EGRESS_VERDICT_DENY;
  freebind.raw.reason = EGRESS_REASON_NONLOCAL_SOURCE;
  freebind.raw.family = EGRESS_FAMILY_IPV6;
  freebind.raw.tgid = 4242;
  std::strcpy(freebind.raw.comm, "nginx");
  freebind.ctx.target = "web";
  EXPECT_EQ(RenderText(freebind),
            "Jan 01 00:00:00.000 web nginx[4242] setsockopt nonlocal source "
            "DENIED (nonlocal source blocked)");
}

}  // namespace
}  // namespace egress
