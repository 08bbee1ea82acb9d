#include "userspace/workloads/inspect_queue.h"

namespace egress::workloads {

void InspectQueue::Add(const std::string& id) {
  if (under_way_.count(id)) {
    again_.insert(id);
    return;
  }
  if (queued_.insert(id).second) order_.push_back(id);
}

std::optional<std::string> InspectQueue::Take() {
  if (order_.empty()) return std::nullopt;
  std::string id = std::move(order_.front());
  order_.pop_front();
  queued_.erase(id);
  under_way_.insert(id);
  return id;
}

void InspectQueue::Done(const std::string& id) {
  if (under_way_.erase(id) == 0) return;
  if (again_.erase(id) > 0 && queued_.insert(id).second) order_.push_back(id);
}

void InspectQueue::Clear() {
  order_.clear();
  queued_.clear();
  again_.clear();
}

}  // namespace egress::workloads
