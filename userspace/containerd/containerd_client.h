// The containers of one containerd namespace, read over containerd's own
// API socket (gRPC): each container's id, image and labels, and its task's
// pid when it runs. Kubernetes pods are containers of the "k8s.io"
// namespace whose labels CRI writes (io.kubernetes.pod.namespace, ...).
#ifndef EGRESS_USERSPACE_CONTAINERD_CONTAINERD_CLIENT_H_
#define EGRESS_USERSPACE_CONTAINERD_CONTAINERD_CLIENT_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace egress::containerd {

inline constexpr char kDefaultSocket[] = "/run/containerd/containerd.sock";
// The namespace CRI (kubelet) creates pods in.
inline constexpr char kKubernetesNamespace[] = "k8s.io";

struct ContainerdContainer {
  std::string id;
  std::string image;
  std::map<std::string, std::string> labels;
  uint32_t pid = 0;  // the task's first process; 0 = no running task
  bool running = false;
};

// The pod a container belongs to, from the labels CRI writes; empty fields
// for a container CRI did not make.
struct PodIdentity {
  std::string namespace_name;  // io.kubernetes.pod.namespace
  std::string pod;             // io.kubernetes.pod.name
  std::string container;       // io.kubernetes.container.name
};
PodIdentity PodOf(const ContainerdContainer& c);

class ContainerdClient {
 public:
  // `socket` is a path ("/run/containerd/containerd.sock"). Connects lazily;
  // every call has `timeout`.
  explicit ContainerdClient(const std::string& socket,
                            absl::Duration timeout = absl::Seconds(2));
  ~ContainerdClient();
  ContainerdClient(const ContainerdClient&) = delete;
  ContainerdClient& operator=(const ContainerdClient&) = delete;

  // Every container of `ns`, in containerd's order, with its task's pid.
  // Unavailable (naming the socket) when containerd does not answer.
  absl::StatusOr<std::vector<ContainerdContainer>> List(
      const std::string& ns) const;

  // Follows containerd's events of namespace `ns` whose topic is one of
  // `topics` ("/tasks/start", ...): calls `on_event(topic)` for each, and
  // returns when the stream ends (OK), when CancelSubscribe is called
  // (Cancelled) or on an error (the socket named). One subscription at a
  // time.
  absl::Status Subscribe(
      const std::string& ns, const std::vector<std::string>& topics,
      const std::function<void(const std::string&)>& on_event);
  // Ends a Subscribe in progress (from another thread); later ones too.
  void CancelSubscribe();

 private:
  struct Stubs;
  struct Subscription;
  std::string socket_;
  absl::Duration timeout_;
  std::unique_ptr<Stubs> stubs_;
  std::unique_ptr<Subscription> subscription_;
};

}  // namespace egress::containerd

#endif  // EGRESS_USERSPACE_CONTAINERD_CONTAINERD_CLIENT_H_
