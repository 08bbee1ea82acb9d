#include "bench/bench_util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "userspace/common/errno_status.h"
#include "userspace/common/unique_fd.h"

namespace egress::bench {
namespace {

bool Populated(const std::string& dir) {
  UniqueFd fd(
      open(absl::StrCat(dir, "/cgroup.events").c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return false;
  char buf[256];
  ssize_t n = read(fd.get(), buf, sizeof(buf) - 1);
  if (n <= 0) return false;
  buf[n] = '\0';
  return strstr(buf, "populated 1") != nullptr;
}

}  // namespace

absl::Status WriteText(const std::string& path, absl::string_view text) {
  UniqueFd fd(open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd) return ErrnoStatus(errno, "open", path);
  if (write(fd.get(), text.data(), text.size()) !=
      static_cast<ssize_t>(text.size())) {
    return ErrnoStatus(errno, "write", path);
  }
  return absl::OkStatus();
}

absl::Status RemoveCgroup(const std::string& dir) {
  if (access(dir.c_str(), F_OK) != 0) return absl::OkStatus();
  (void)WriteText(absl::StrCat(dir, "/cgroup.kill"), "1");
  absl::Time deadline = absl::Now() + absl::Seconds(5);
  while (Populated(dir) && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  while (rmdir(dir.c_str()) != 0) {
    if (errno == ENOENT) return absl::OkStatus();
    if (errno != EBUSY || absl::Now() >= deadline) {
      return ErrnoStatus(errno, "rmdir", dir);
    }
    absl::SleepFor(absl::Milliseconds(5));
  }
  return absl::OkStatus();
}

std::string WithCommas(uint64_t v) {
  std::string digits = absl::StrCat(v);
  std::string out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out.push_back(',');
    out.push_back(digits[i]);
  }
  return out;
}

int64_t ClockNs(clockid_t clock) {
  timespec ts;
  clock_gettime(clock, &ts);
  return int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
}

double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t m = v.size() / 2;
  return v.size() % 2 == 1 ? v[m] : (v[m - 1] + v[m]) / 2;
}

double Quantile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  double pos = q * static_cast<double>(v.size() - 1);
  size_t i = static_cast<size_t>(pos);
  if (i + 1 >= v.size()) return v.back();
  return v[i] + (pos - static_cast<double>(i)) * (v[i + 1] - v[i]);
}

sockaddr_in Loopback(uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return a;
}

}  // namespace egress::bench
