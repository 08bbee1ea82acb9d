// A Docker Engine API on a unix socket for the watcher's unit tests, with
// Docker's timing in hand: /events stays open and sends what the test
// sends, and the inspect of a container the test holds is answered only once
// released (as Docker answers an inspect only once a start under way ends),
// with what the container was when asked.
// /containers/json lists nothing. Each connection is served on a thread of
// its own; the destructor ends every answer and joins them.
#ifndef EGRESS_TESTS_TESTING_FAKE_DOCKER_API_H_
#define EGRESS_TESTS_TESTING_FAKE_DOCKER_API_H_

#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "userspace/common/unique_fd.h"

namespace egress::testing {

class FakeDockerApi {
 public:
  static absl::StatusOr<std::unique_ptr<FakeDockerApi>> Start(
      const std::string& socket_path);
  FakeDockerApi(const FakeDockerApi&) = delete;
  FakeDockerApi& operator=(const FakeDockerApi&) = delete;
  ~FakeDockerApi();

  // The inspect answer of `id` (a 404 until set): running with `pid`, or
  // existing without running (pid 0).
  void SetContainer(const std::string& id, const std::string& name,
                    int pid = 0);
  // Inspects of `id` wait until Release(id).
  void Hold(const std::string& id);
  void Release(const std::string& id);
  // Sends `json` as one line on every open /events answer.
  void SendEvent(const std::string& json);
  // Waits (at most `timeout`) until `n` /events answers are open, or until
  // an inspect of `id` is waiting (held).
  bool WaitEventStreams(int n, absl::Duration timeout);
  bool WaitHeldInspect(const std::string& id, absl::Duration timeout);
  // Inspects of `id` asked for so far.
  int Inspects(const std::string& id);

 private:
  FakeDockerApi() = default;
  void AcceptLoop();
  void Serve(UniqueFd fd);

  std::string path_;
  UniqueFd listen_, stop_fd_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::map<std::string, std::string> inspect_;  // id -> JSON
  std::set<std::string> held_;
  std::set<std::string> waiting_;  // held ids an inspect waits for
  std::map<std::string, int> asked_;
  std::vector<int> streams_;  // fds of open /events answers
  std::thread acceptor_;
  std::vector<std::thread> connections_;
};

}  // namespace egress::testing

#endif  // EGRESS_TESTS_TESTING_FAKE_DOCKER_API_H_
