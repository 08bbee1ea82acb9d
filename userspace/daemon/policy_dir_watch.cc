#include "userspace/daemon/policy_dir_watch.h"

#include <errno.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace egress {
namespace {

// What the directory watch asks for: the events that change what a reload
// reads, and the opens and closes that say whether a file is still open.
constexpr uint32_t kContentEvents = IN_CLOSE_WRITE | IN_MOVED_TO |
                                    IN_MOVED_FROM | IN_CREATE | IN_DELETE |
                                    IN_MODIFY;
constexpr uint32_t kWatchMask = kContentEvents | IN_OPEN | IN_CLOSE_NOWRITE;

// The entries a reload reads (policy::LoadPolicyPath's choice).
bool IsPolicyName(absl::string_view name) {
  return absl::EndsWith(name, ".yaml") || absl::EndsWith(name, ".yml");
}

}  // namespace

bool PolicyFileWriters::OnEvent(uint32_t mask, absl::string_view name) {
  const bool content = (mask & kContentEvents) != 0;
  if (name.empty() || (mask & IN_ISDIR) != 0 || !IsPolicyName(name)) {
    return content;
  }
  // Gone, or renamed into place (the atomic way to replace a file: what is
  // renamed in was complete when it was renamed).
  if ((mask & (IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO)) != 0) {
    files_.erase(std::string(name));
    return content;
  }
  File& f = files_[std::string(name)];
  if ((mask & IN_OPEN) != 0) ++f.opens;
  if ((mask & (IN_CREATE | IN_MODIFY)) != 0) f.changed = true;
  if ((mask & (IN_CLOSE_WRITE | IN_CLOSE_NOWRITE)) != 0 && f.opens > 0) {
    --f.opens;
  }
  if ((mask & IN_CLOSE_WRITE) != 0) f.changed = false;
  if (f.opens == 0 && !f.changed) files_.erase(std::string(name));
  return content;
}

std::optional<std::string> PolicyFileWriters::Busy() const {
  for (const auto& [name, f] : files_) {
    if (f.changed && f.opens > 0) return name;
  }
  return std::nullopt;
}

bool PolicyDirWatch::Open(std::string* why) {
  fd_.reset(inotify_init1(IN_CLOEXEC | IN_NONBLOCK));
  if (!fd_) *why = strerror(errno);
  return static_cast<bool>(fd_);
}

bool PolicyDirWatch::Read() {
  bool changed = false;
  alignas(inotify_event) char buf[4096];
  // Bounded: the queue holds at most max_queued_events; a writer faster
  // than this loop is cut off by the count.
  for (int i = 0; i < 1024; ++i) {
    const ssize_t n = read(fd_.get(), buf, sizeof(buf));
    if (n <= 0) break;
    for (ssize_t off = 0;
         off + static_cast<ssize_t>(sizeof(inotify_event)) <= n;) {
      const auto* ev = reinterpret_cast<const inotify_event*>(buf + off);
      off += static_cast<ssize_t>(sizeof(inotify_event) + ev->len);
      if ((ev->mask & IN_Q_OVERFLOW) != 0) {
        writers_.Clear();
        changed = true;
        continue;
      }
      if (ev->wd != wd_) continue;  // the watch before the path moved
      // The kernel pads the name with NULs to its len.
      const absl::string_view name =
          ev->len > 0 ? absl::string_view(ev->name, strnlen(ev->name, ev->len))
                      : absl::string_view();
      changed |= writers_.OnEvent(ev->mask, name);
    }
  }
  return changed;
}

bool PolicyDirWatch::Follow(std::string* note) {
  const bool first = !followed_;
  followed_ = true;
  struct stat st;
  std::string failure;
  if (stat(dir_.c_str(), &st) != 0) {
    failure = strerror(errno);
  } else if (!S_ISDIR(st.st_mode)) {
    failure = "not a directory";
  }
  if (!failure.empty()) {
    const bool was_watched = watched_.has_value();
    if (wd_ >= 0) inotify_rm_watch(fd_.get(), wd_);
    wd_ = -1;
    watched_.reset();
    writers_.Clear();
    if (failure != last_failure_) {
      *note = absl::StrCat("not watching ", dir_, " (", failure,
                           "): it is applied when it appears");
      last_failure_ = failure;
    }
    return was_watched && !first;
  }
  const Identity now{st.st_dev, st.st_ino};
  if (watched_ == now) return false;
  // inotify_add_watch follows the path again: if it moved in between, the
  // next call sees an identity other than the one recorded and moves again.
  const int wd = inotify_add_watch(fd_.get(), dir_.c_str(), kWatchMask);
  if (wd < 0) {
    failure = strerror(errno);
    if (failure != last_failure_) {
      *note = absl::StrCat("not watching ", dir_, " (", failure,
                           "): reload it with SIGHUP or egressctl reload");
      last_failure_ = failure;
    }
    return false;
  }
  if (wd_ >= 0 && wd_ != wd) inotify_rm_watch(fd_.get(), wd_);
  wd_ = wd;
  const bool moved = watched_.has_value();
  watched_ = now;
  last_failure_.clear();
  writers_.Clear();
  if (first) return false;  // the start applies the directory anyway
  *note = absl::StrCat(dir_, moved ? " now names another directory: watching it"
                                   : " appeared: watching it");
  return true;
}

}  // namespace egress
