// A learned.json as an egressd from before learned.db left it in its state
// directory, for the tests of its import.
#ifndef EGRESS_TESTS_PRIVILEGED_OLDER_LEARNED_JSON_H_
#define EGRESS_TESTS_PRIVILEGED_OLDER_LEARNED_JSON_H_

#include <netinet/in.h>

#include <string>

#include "absl/status/status.h"
#include "absl/time/clock.h"
#include "userspace/daemon/learn.h"

namespace egress::testing {

// The address of the one attempt the file holds: `suggest` shows it once
// egressd imported the file.
inline constexpr char kOlderLearnedAddress[] = "127.0.0.3";

// Writes at `path` a learned.json with one attempt of target "web" to
// 127.0.0.3:40003/tcp by "curl".
inline absl::Status WriteOlderLearnedJson(const std::string& path) {
  LearnStore old;
  old.Record("web", 4, {127, 0, 0, 3}, IPPROTO_TCP, 40003, 1,
             absl::GetCurrentTimeNanos(), "curl");
  return old.Save(path);
}

}  // namespace egress::testing

#endif  // EGRESS_TESTS_PRIVILEGED_OLDER_LEARNED_JSON_H_
