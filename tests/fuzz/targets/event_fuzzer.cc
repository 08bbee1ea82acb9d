// Fuzz target: kernel records (egress_event, abi.h) and egressd's context for
// them -> the JSON line writers. The fast writer (EventLineWriter,
// event_line.cc) promises the exact bytes of the tree (EventToJson(...).dump(),
// event_json.cc) for every record it covers; this target checks that
// byte-identity, that the line egressd writes (RenderJsonLine, either path)
// is one JSON object that parses, and that the text form is one line.
//
// Input, repeated (one writer for all records, so its caches of the context
// strings and of the second are exercised across records):
//   240 bytes   the record (a shorter tail is zero-filled, as the ring
//               buffer reader does for short inet records)
//   8 bytes     realtime_offset_ns (little endian)
//   2 bytes     rule_number
//   3 strings   target, cgroup_path, node_name, each ended by a NUL byte
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "egress/abi.h"
#include "nlohmann/json.hpp"
#include "tests/fuzz/targets/fuzz_check.h"
#include "userspace/events/event_json.h"
#include "userspace/events/event_line.h"
#include "userspace/events/event_record.h"
#include "userspace/events/event_render.h"
#include "userspace/events/event_text.h"

namespace egress {
namespace {

class Reader {
 public:
  explicit Reader(absl::string_view in) : in_(in) {}
  bool empty() const { return in_.empty(); }
  void Bytes(void* out, size_t n) {
    std::memset(out, 0, n);
    const size_t k = std::min(n, in_.size());
    std::memcpy(out, in_.data(), k);
    in_.remove_prefix(k);
  }
  std::string String() {
    const size_t end = std::min(in_.find('\0'), in_.size());
    std::string s(in_.substr(0, end));
    in_.remove_prefix(std::min(end + 1, in_.size()));
    return s;
  }

 private:
  absl::string_view in_;
};

void CheckRecord(const EventRecord& r, EventLineWriter& writer) {
  std::string fast = "kept";
  if (writer.Append(r.raw, r.ctx, &fast)) {
    const std::string tree = EventToJson(r.raw, r.ctx).dump();
    FUZZ_CHECK(fast == "kept" + tree,
               absl::StrCat("fast: ", fast.substr(4), "\ntree: ", tree));
  } else {
    FUZZ_CHECK(fast == "kept", "Append gave up but changed its output");
  }
  std::string line;
  RenderJsonLine(r, writer, &line);
  const nlohmann::json parsed =
      nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
  FUZZ_CHECK(!parsed.is_discarded() && parsed.is_object(), line);
  const std::string text = RenderText(r);
  FUZZ_CHECK(text.find('\n') == std::string::npos, text);
}

}  // namespace
}  // namespace egress

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  egress::Reader in(
      absl::string_view(reinterpret_cast<const char*>(data), size));
  egress::EventLineWriter writer;
  for (int i = 0; i < 4 && !in.empty(); ++i) {
    egress::EventRecord r;
    in.Bytes(&r.raw, sizeof(r.raw));
    in.Bytes(&r.ctx.realtime_offset_ns, sizeof(r.ctx.realtime_offset_ns));
    uint16_t rule_number = 0;
    in.Bytes(&rule_number, sizeof(rule_number));
    r.ctx.rule_number = rule_number;
    r.ctx.target = in.String();
    r.ctx.cgroup_path = in.String();
    r.ctx.node_name = in.String();
    egress::CheckRecord(r, writer);
  }
  return 0;
}
