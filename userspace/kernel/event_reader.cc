#include "userspace/kernel/event_reader.h"

#include <bpf/libbpf.h>
#include <errno.h>

#include <algorithm>
#include <cstddef>
#include <cstring>

#include "userspace/common/errno_status.h"

namespace egress {
namespace {

// What OnRecord returns to stop a batch. libbpf (ringbuf_process_ring, 1.1
// and later) moves the consumer position past the record whose callback
// returned a negative value, then returns that value from
// ring_buffer__consume: the record was handled, and the ones after it stay
// in the ring. libbpf 1.1 has no ring_buffer__consume_n. Never an error of
// libbpf's own: consume returns only what callbacks return.
constexpr int kBatchFull = -ECANCELED;

}  // namespace

absl::StatusOr<std::unique_ptr<EventReader>> EventReader::Create(
    int events_fd, Handler handler, AnswerHandler answers) {
  auto reader = std::unique_ptr<EventReader>(new EventReader());
  reader->handler_ = std::move(handler);
  reader->answers_ = std::move(answers);
  reader->rb_.reset(ring_buffer__new(events_fd, &EventReader::OnRecord,
                                     reader.get(), nullptr));
  if (reader->rb_ == nullptr) {
    return ErrnoStatus(errno, "ring_buffer__new", "events");
  }
  return reader;
}

int EventReader::OnRecord(void* ctx, void* data, size_t size) {
  auto* self = static_cast<EventReader*>(ctx);
  self->Handle(data, size);
  return ++self->batch_consumed_ >= self->batch_limit_ ? kBatchFull : 0;
}

void EventReader::Handle(void* data, size_t size) {
  // Inet records end before the unix tail (EGRESS_EVENT_INET_BYTES); what a
  // record lacks stays zero.
  if (size < EGRESS_EVENT_INET_BYTES) {
    ++malformed_;
    return;
  }
  // Told apart by the kind byte, which both kinds keep at one offset.
  const uint8_t kind =
      static_cast<const uint8_t*>(data)[offsetof(egress_event, kind)];
  if (kind == EGRESS_EVENT_DNS_ANSWER) {
    if (size != sizeof(egress_dns_answer_event)) {
      ++malformed_;
      return;
    }
    if (answers_) {
      egress_dns_answer_event a;
      std::memcpy(&a, data, sizeof(a));
      answers_(a);
    }
    return;
  }
  egress_event e{};
  std::memcpy(&e, data, std::min(size, sizeof(e)));
  handler_(e);
}

absl::StatusOr<int> EventReader::Drain(int max_records) {
  if (max_records <= 0) return 0;
  batch_consumed_ = 0;
  batch_limit_ = max_records;
  const int n = ring_buffer__consume(rb_.get());
  if (n < 0 && n != kBatchFull) {
    return ErrnoStatus(-n, "ring_buffer__consume", "events");
  }
  return batch_consumed_;
}

}  // namespace egress
