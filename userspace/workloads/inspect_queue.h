// The containers the Docker watcher has yet to inspect, in event order, for
// a few inspectors at once: each id queued once however many events name it,
// and never inspected by two inspectors at the same time (an older answer
// finishing last would undo a newer one). An id named again while its
// inspect is under way is inspected once more after it: the answer under way
// may predate the event. Pure logic; the caller locks.
#ifndef EGRESS_USERSPACE_WORKLOADS_INSPECT_QUEUE_H_
#define EGRESS_USERSPACE_WORKLOADS_INSPECT_QUEUE_H_

#include <deque>
#include <optional>
#include <set>
#include <string>

namespace egress::workloads {

class InspectQueue {
 public:
  // An event named `id`: queued, unless it is already (then it keeps its
  // place) or under way (then queued again once Done).
  void Add(const std::string& id);
  // The oldest queued id, now under way (a queued id never is: Add defers
  // it); none when nothing is queued.
  std::optional<std::string> Take();
  // The inspect of `id` (from Take) ended.
  void Done(const std::string& id);
  // Forgets what is queued (a new connection lists everything anew); what
  // is under way stays so until Done, and is not queued again.
  void Clear();
  size_t queued() const { return queued_.size(); }
  size_t under_way() const { return under_way_.size(); }

 private:
  std::deque<std::string> order_;  // queued ids, oldest first
  std::set<std::string> queued_;
  std::set<std::string> under_way_;
  std::set<std::string> again_;  // under way and named again since
};

}  // namespace egress::workloads

#endif  // EGRESS_USERSPACE_WORKLOADS_INSPECT_QUEUE_H_
