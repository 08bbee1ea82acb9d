// Reads verdict records from the events ring buffer. Records are submitted
// without wake-ups, so the owner drains on a short timer (Drain()).
#ifndef EGRESS_USERSPACE_KERNEL_EVENT_READER_H_
#define EGRESS_USERSPACE_KERNEL_EVENT_READER_H_

#include <cstdint>
#include <functional>
#include <limits>
#include <memory>

#include "absl/status/statusor.h"
#include "egress/abi.h"
#include "egress/dns_abi.h"
#include "userspace/kernel/libbpf_ptr.h"

namespace egress {

class EventReader {
 public:
  using Handler = std::function<void(const egress_event&)>;
  // DNS-answer records of audit learning (dns_abi.h); they are not verdict
  // or flow records and never reach `handler`.
  using AnswerHandler = std::function<void(const egress_dns_answer_event&)>;

  // `events_fd` is the ring buffer map; `handler` is called for every
  // well-formed record, in order, and `answers` (may be empty: dropped) for
  // every DNS-answer record. Errno status when libbpf refuses the map.
  static absl::StatusOr<std::unique_ptr<EventReader>> Create(
      int events_fd, Handler handler, AnswerHandler answers = nullptr);

  // Consumes the records available now, at most `max_records` of them
  // (the rest stay in the ring for the next call): a caller that passes
  // records on through bounded buffers (followers) can empty those between
  // batches. Returns how many were consumed; fewer than `max_records` means
  // the ring was empty.
  absl::StatusOr<int> Drain(int max_records = std::numeric_limits<int>::max());

  // Records shorter than an inet record (EGRESS_EVENT_INET_BYTES; never
  // expected; counted, skipped).
  uint64_t malformed() const { return malformed_; }

 private:
  EventReader() = default;
  static int OnRecord(void* ctx, void* data, size_t size);
  // Passes one record to its handler (or counts it malformed).
  void Handle(void* data, size_t size);

  // Declared first, destroyed last: the ring buffer's callback context is
  // this object, and libbpf calls OnRecord only from Drain().
  Handler handler_;
  AnswerHandler answers_;
  RingBufferPtr rb_;
  uint64_t malformed_ = 0;
  // The batch Drain() is consuming: records consumed and the bound.
  int batch_consumed_ = 0;
  int batch_limit_ = 0;
};

}  // namespace egress

#endif  // EGRESS_USERSPACE_KERNEL_EVENT_READER_H_
