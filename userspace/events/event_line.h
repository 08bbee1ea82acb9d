// The fast path from a kernel record to its JSON line: a fixed-schema writer
// that appends straight into a string instead of building an nlohmann::json
// tree, dumping it and re-parsing it for its "message" (34x faster here:
// bench/events_bench.cc). It writes exactly the bytes of
// EventToJson(e, ctx).dump() (event_json.h; tests/unit/event_line_test.cc and
// the benchmark check this) and gives up, returning false, on what it does
// not cover: existing/cut/held_back/self-check, setsockopt and unix records,
// strings with bytes >= 0x80, times outside years 1970..9999. Callers fall
// back to EventToJson for those. Verdict and TCP flow records (established,
// closed) are covered.
#ifndef EGRESS_USERSPACE_EVENTS_EVENT_LINE_H_
#define EGRESS_USERSPACE_EVENTS_EVENT_LINE_H_

#include <cstdint>
#include <string>

#include "egress/abi.h"
#include "userspace/events/event_json.h"

namespace egress {

class EventLineWriter {
 public:
  // Appends the JSON line of `e` (without a newline) to `out`. False, with
  // `out` unchanged, when the record is not covered (see above).
  bool Append(const egress_event& e, const EventContext& ctx, std::string* out);

 private:
  // Escapes the context's strings again when they differ from the last
  // record's (a compare instead of an escape per record). False when one is
  // not covered.
  bool UseContext(const EventContext& ctx);

  // The context strings of the last record, raw and escaped.
  std::string target_, cgroup_path_, node_name_;
  std::string target_esc_, cgroup_path_esc_, node_name_esc_;
  // The target as the hint's shell word (AllowHint), escaped.
  std::string hint_target_esc_;
  bool context_ok_ = false;
  bool context_set_ = false;
  // The line is written here first, then appended to `out` in one copy: it
  // only grows, so no zero-filled resize per record.
  std::string scratch_;

  // The formatted date and time of one second, cached: records come in
  // bursts with the same second.
  int64_t cached_second_ = INT64_MIN;
  char iso_[20] = {};   // "2026-11-24T17:51:43"
  char text_[16] = {};  // "Nov 24 17:51:43"
};

}  // namespace egress

#endif  // EGRESS_USERSPACE_EVENTS_EVENT_LINE_H_
