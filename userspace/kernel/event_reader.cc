#include "userspace/kernel/event_reader.h"

#include <bpf/libbpf.h>
#include <errno.h>

#include <algorithm>
#include <cstddef>
#include <cstring>

#include "userspace/common/errno_status.h"

namespace egress {

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
  // Inet records end before the unix tail (EGRESS_EVENT_INET_BYTES); what a
  // record lacks stays zero.
  if (size < EGRESS_EVENT_INET_BYTES) {
    ++self->malformed_;
    return 0;
  }
  // Told apart by the kind byte, which both kinds keep at one offset.
  const uint8_t kind =
      static_cast<const uint8_t*>(data)[offsetof(egress_event, kind)];
  if (kind == EGRESS_EVENT_DNS_ANSWER) {
    if (size != sizeof(egress_dns_answer_event)) {
      ++self->malformed_;
      return 0;
    }
    if (self->answers_) {
      egress_dns_answer_event a;
      std::memcpy(&a, data, sizeof(a));
      self->answers_(a);
    }
    return 0;
  }
  egress_event e{};
  std::memcpy(&e, data, std::min(size, sizeof(e)));
  self->handler_(e);
  return 0;
}

absl::StatusOr<int> EventReader::Drain() {
  int n = ring_buffer__consume(rb_.get());
  if (n < 0) return ErrnoStatus(-n, "ring_buffer__consume", "events");
  return n;
}

}  // namespace egress
