#include "tests/testing/fake_docker_api.h"

#include <errno.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "nlohmann/json.hpp"
#include "userspace/common/errno_status.h"

namespace egress::testing {
namespace {

// Connections served at most: a watcher test opens a handful.
constexpr size_t kMaxConnections = 256;

bool WriteAll(int fd, const std::string& data) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = send(fd, data.data() + done, data.size() - done, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += n;
  }
  return true;
}

std::string Answer(int status, const std::string& body) {
  return absl::StrCat("HTTP/1.1 ", status, status == 200 ? " OK" : " Not Found",
                      "\r\nContent-Type: application/json\r\nContent-Length: ",
                      body.size(), "\r\nConnection: close\r\n\r\n", body);
}

}  // namespace

absl::StatusOr<std::unique_ptr<FakeDockerApi>> FakeDockerApi::Start(
    const std::string& socket_path) {
  auto api = std::unique_ptr<FakeDockerApi>(new FakeDockerApi());
  api->path_ = socket_path;
  api->listen_.reset(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!api->listen_) return ErrnoStatus(errno, "socket");
  sockaddr_un sun{};
  sun.sun_family = AF_UNIX;
  if (socket_path.size() >= sizeof(sun.sun_path)) {
    return absl::InvalidArgumentError("socket path too long");
  }
  strcpy(sun.sun_path, socket_path.c_str());
  if (bind(api->listen_.get(), reinterpret_cast<sockaddr*>(&sun),
           sizeof(sun)) != 0) {
    return ErrnoStatus(errno, absl::StrCat("bind ", socket_path));
  }
  if (listen(api->listen_.get(), 64) != 0) return ErrnoStatus(errno, "listen");
  api->stop_fd_.reset(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!api->stop_fd_) return ErrnoStatus(errno, "eventfd");
  api->acceptor_ = std::thread([self = api.get()] { self->AcceptLoop(); });
  return api;
}

FakeDockerApi::~FakeDockerApi() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    // Ends the endless /events answers: their readers see the end.
    for (int fd : streams_) shutdown(fd, SHUT_RDWR);
  }
  cv_.notify_all();
  uint64_t one = 1;
  if (write(stop_fd_.get(), &one, sizeof(one)) < 0) {
    // EAGAIN only: the acceptor is woken anyway.
  }
  if (acceptor_.joinable()) acceptor_.join();
  for (std::thread& t : connections_) t.join();
  unlink(path_.c_str());
}

void FakeDockerApi::AcceptLoop() {
  while (connections_.size() < kMaxConnections) {
    pollfd fds[] = {{listen_.get(), POLLIN, 0}, {stop_fd_.get(), POLLIN, 0}};
    if (poll(fds, 2, -1) < 0 && errno != EINTR) return;
    if (fds[1].revents & POLLIN) return;
    if (!(fds[0].revents & POLLIN)) continue;
    UniqueFd fd(accept4(listen_.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (!fd) continue;
    connections_.emplace_back(
        [this, fd = std::move(fd)]() mutable { Serve(std::move(fd)); });
  }
}

void FakeDockerApi::Serve(UniqueFd fd) {
  std::string request;
  char buf[4096];
  while (!absl::StrContains(request, "\r\n\r\n")) {
    ssize_t n = read(fd.get(), buf, sizeof(buf));
    if (n <= 0) return;
    request.append(buf, n);
  }
  // "GET <target> HTTP/1.1"
  const size_t from = request.find(' ') + 1;
  const std::string target =
      request.substr(from, request.find(' ', from) - from);
  std::unique_lock<std::mutex> lock(mu_);
  if (absl::StartsWith(target, "/events")) {
    WriteAll(fd.get(),
             "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
             "Transfer-Encoding: chunked\r\n\r\n");
    streams_.push_back(fd.get());
    cv_.notify_all();
    cv_.wait(lock, [this] { return stopping_; });
    streams_.erase(std::find(streams_.begin(), streams_.end(), fd.get()));
    return;
  }
  if (absl::StartsWith(target, "/containers/json")) {
    lock.unlock();
    WriteAll(fd.get(), Answer(200, "[]"));
    return;
  }
  // /containers/<id>/json
  const std::string id = target.substr(
      sizeof("/containers/") - 1,
      target.size() - (sizeof("/containers/") - 1) - (sizeof("/json") - 1));
  // What the container is when asked, answered once released: an answer
  // that may be stale by then, as Docker's can be.
  ++asked_[id];
  auto it = inspect_.find(id);
  const std::string answer =
      it == inspect_.end() ? Answer(404, R"({"message":"No such container"})")
                           : Answer(200, it->second);
  if (held_.count(id)) {
    waiting_.insert(id);
    cv_.notify_all();
    cv_.wait(lock, [&] { return stopping_ || !held_.count(id); });
    waiting_.erase(id);
  }
  lock.unlock();
  WriteAll(fd.get(), answer);
}

void FakeDockerApi::SetContainer(const std::string& id, const std::string& name,
                                 int pid) {
  nlohmann::json j = {{"Id", id},
                      {"Name", "/" + name},
                      {"Config", {{"Image", "busybox"}, {"Labels", nullptr}}},
                      {"State", {{"Running", pid != 0}, {"Pid", pid}}}};
  std::lock_guard<std::mutex> lock(mu_);
  inspect_[id] = j.dump();
}

void FakeDockerApi::Hold(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  held_.insert(id);
}

void FakeDockerApi::Release(const std::string& id) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    held_.erase(id);
  }
  cv_.notify_all();
}

void FakeDockerApi::SendEvent(const std::string& json) {
  const std::string line = json + "\n";
  const std::string chunk = absl::StrFormat("%x\r\n%s\r\n", line.size(), line);
  std::lock_guard<std::mutex> lock(mu_);
  for (int fd : streams_) WriteAll(fd, chunk);
}

bool FakeDockerApi::WaitEventStreams(int n, absl::Duration timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  return cv_.wait_for(lock, absl::ToChronoNanoseconds(timeout),
                      [&] { return static_cast<int>(streams_.size()) >= n; });
}

bool FakeDockerApi::WaitHeldInspect(const std::string& id,
                                    absl::Duration timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  return cv_.wait_for(lock, absl::ToChronoNanoseconds(timeout),
                      [&] { return waiting_.count(id) > 0; });
}

int FakeDockerApi::Inspects(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = asked_.find(id);
  return it == asked_.end() ? 0 : it->second;
}

}  // namespace egress::testing
