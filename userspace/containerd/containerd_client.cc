#include "userspace/containerd/containerd_client.h"

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <map>
#include <mutex>

#include "absl/strings/str_cat.h"
#include "userspace/containerd/proto/containers.grpc.pb.h"
#include "userspace/containerd/proto/events.grpc.pb.h"
#include "userspace/containerd/proto/tasks.grpc.pb.h"
#include "userspace/workloads/cri_pods.h"

namespace egress::containerd {
namespace {

namespace containers_v1 = ::containerd::services::containers::v1;
namespace tasks_v1 = ::containerd::services::tasks::v1;
namespace events_v1 = ::containerd::services::events::v1;

// containerd takes the namespace of a call from this metadata key.
constexpr char kNamespaceHeader[] = "containerd-namespace";

absl::Status FromGrpc(const grpc::Status& st, const std::string& socket,
                      absl::string_view call) {
  const std::string what = absl::StrCat("containerd at ", socket, ": ", call,
                                        ": ", st.error_message());
  switch (st.error_code()) {
    case grpc::StatusCode::UNAVAILABLE:
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return absl::UnavailableError(what);
    case grpc::StatusCode::PERMISSION_DENIED:
      return absl::PermissionDeniedError(what);
    default:
      return absl::InternalError(what);
  }
}

}  // namespace

PodIdentity PodOf(const ContainerdContainer& c) {
  const workloads::CriPod pod = workloads::CriPodOf(c.labels);
  return {pod.ns, pod.name, pod.container};
}

struct ContainerdClient::Stubs {
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<containers_v1::Containers::Stub> containers;
  std::unique_ptr<tasks_v1::Tasks::Stub> tasks;
  std::unique_ptr<events_v1::Events::Stub> events;
};

// The context of the subscription in progress, for CancelSubscribe.
struct ContainerdClient::Subscription {
  std::mutex mu;
  grpc::ClientContext* ctx = nullptr;
  bool cancelled = false;
};

ContainerdClient::ContainerdClient(const std::string& socket,
                                   absl::Duration timeout)
    : socket_(socket),
      timeout_(timeout),
      stubs_(std::make_unique<Stubs>()),
      subscription_(std::make_unique<Subscription>()) {
  grpc::ChannelArguments args;
  // A unix socket has no authority; containerd ignores it.
  args.SetString(GRPC_ARG_DEFAULT_AUTHORITY, "localhost");
  stubs_->channel =
      grpc::CreateCustomChannel(absl::StrCat("unix://", socket_),
                                grpc::InsecureChannelCredentials(), args);
  stubs_->containers = containers_v1::Containers::NewStub(stubs_->channel);
  stubs_->tasks = tasks_v1::Tasks::NewStub(stubs_->channel);
  stubs_->events = events_v1::Events::NewStub(stubs_->channel);
}

ContainerdClient::~ContainerdClient() = default;

absl::Status ContainerdClient::Subscribe(
    const std::string& ns, const std::vector<std::string>& topics,
    const std::function<void(const std::string&)>& on_event) {
  grpc::ClientContext ctx;
  ctx.AddMetadata(kNamespaceHeader, ns);
  {
    std::lock_guard<std::mutex> lock(subscription_->mu);
    if (subscription_->cancelled) return absl::CancelledError("cancelled");
    subscription_->ctx = &ctx;
  }
  events_v1::SubscribeRequest request;
  // Filters are alternatives: one per topic, each within the namespace.
  for (const std::string& topic : topics) {
    request.add_filters(
        absl::StrCat("namespace==", ns, ",topic==\"", topic, "\""));
  }
  std::unique_ptr<grpc::ClientReader<events_v1::Envelope>> reader =
      stubs_->events->Subscribe(&ctx, request);
  events_v1::Envelope envelope;
  while (reader->Read(&envelope)) {
    if (envelope.namespace_() == ns) on_event(envelope.topic());
  }
  grpc::Status st = reader->Finish();
  bool cancelled;
  {
    std::lock_guard<std::mutex> lock(subscription_->mu);
    subscription_->ctx = nullptr;
    cancelled = subscription_->cancelled;
  }
  if (cancelled) return absl::CancelledError("cancelled");
  if (!st.ok()) return FromGrpc(st, socket_, "subscribe to events");
  return absl::OkStatus();
}

void ContainerdClient::CancelSubscribe() {
  std::lock_guard<std::mutex> lock(subscription_->mu);
  subscription_->cancelled = true;
  if (subscription_->ctx != nullptr) subscription_->ctx->TryCancel();
}

absl::StatusOr<std::vector<ContainerdContainer>> ContainerdClient::List(
    const std::string& ns) const {
  const auto deadline =
      std::chrono::system_clock::now() + absl::ToChronoMilliseconds(timeout_);
  // Every call: the namespace and the one deadline of this List.
  auto call = [&](auto invoke) {
    grpc::ClientContext ctx;
    ctx.set_deadline(deadline);
    ctx.AddMetadata(kNamespaceHeader, ns);
    return invoke(&ctx);
  };
  containers_v1::ListContainersResponse containers;
  grpc::Status st = call([&](grpc::ClientContext* ctx) {
    return stubs_->containers->List(ctx, {}, &containers);
  });
  if (!st.ok()) return FromGrpc(st, socket_, "list containers");
  std::vector<ContainerdContainer> out;
  std::map<std::string, size_t> by_id;
  for (const containers_v1::Container& c : containers.containers()) {
    ContainerdContainer cc;
    cc.id = c.id();
    cc.image = c.image();
    cc.labels.insert(c.labels().begin(), c.labels().end());
    by_id[cc.id] = out.size();
    out.push_back(std::move(cc));
  }
  tasks_v1::ListTasksResponse resp;
  st = call([&](grpc::ClientContext* ctx) {
    return stubs_->tasks->List(ctx, {}, &resp);
  });
  if (!st.ok()) return FromGrpc(st, socket_, "list tasks");
  for (const ::containerd::v1::types::Process& p : resp.tasks()) {
    // A task's id is its container's (containerd 1.6 leaves container_id
    // empty in this list).
    const std::string& owner =
        p.container_id().empty() ? p.id() : p.container_id();
    auto it = by_id.find(owner);
    if (it == by_id.end()) continue;
    ContainerdContainer& c = out[it->second];
    c.pid = p.pid();
    c.running = p.status() == ::containerd::v1::types::RUNNING;
  }
  return out;
}

}  // namespace egress::containerd
