// Watches egressd's --policy_dir and says when a reload is due.
//
// Why a class of its own: two ways the plain "inotify, reload 1 s after the
// last event" got it wrong. A policy file still being written (scp, curl -o,
// a slow copy) is often a valid policy with only some of its rules, so it
// was enforced with the rest missing until the writer finished; a reload now
// waits while a changed policy file is open. And the directory is a path,
// not an inode: a symlink swapped to a new release, or a directory made
// after egressd started, was never watched; the path is now checked again
// every second and the watch follows it.
#ifndef EGRESS_USERSPACE_DAEMON_POLICY_DIR_WATCH_H_
#define EGRESS_USERSPACE_DAEMON_POLICY_DIR_WATCH_H_

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>

#include "absl/container/btree_map.h"
#include "absl/strings/string_view.h"
#include "userspace/common/unique_fd.h"

namespace egress {

// Which policy files (*.yaml, *.yml) are being written, from the inotify
// events of their directory. Pure: no I/O. A file is being written while it
// changed (created or modified) since its last close after writing and some
// process still has it open. Opens are counted from IN_OPEN and the closes
// of either kind, since inotify does not say an open's mode; a close with no
// open seen (the file was open before the watch) counts nothing, and a file
// that changed without an open seen (a hard link, a writer older than the
// watch) is never waited for.
class PolicyFileWriters {
 public:
  // One event (`mask` as inotify gives it) for `name` in the directory
  // (empty: the directory itself). True when it changes what a reload reads.
  bool OnEvent(uint32_t mask, absl::string_view name);
  // A policy file being written, if any (the first by name).
  std::optional<std::string> Busy() const;
  // Events were lost (queue overflow) or the watch moved: nothing is known.
  void Clear() { files_.clear(); }

 private:
  struct File {
    int opens = 0;
    bool changed = false;
  };
  absl::btree_map<std::string, File> files_;
};

// The directory watch itself: one inotify descriptor for the life of the
// loop, its watch moved whenever the path names another directory.
class PolicyDirWatch {
 public:
  explicit PolicyDirWatch(std::string dir) : dir_(std::move(dir)) {}

  // The descriptor to poll; invalid (-1) if inotify could not be had.
  int fd() const { return fd_.get(); }
  // Makes the inotify descriptor. False (with `why`) when it cannot.
  bool Open(std::string* why);
  // Reads every queued event. True when one changes what a reload reads.
  bool Read();
  // Checks what the path names now (follows symlinks) and moves the watch
  // there. True when it changed since the last call (a reload is due);
  // `note` then says what happened, for the log.
  bool Follow(std::string* note);
  std::optional<std::string> Busy() const { return writers_.Busy(); }

 private:
  struct Identity {
    dev_t dev = 0;
    ino_t ino = 0;
    bool operator==(const Identity& o) const {
      return dev == o.dev && ino == o.ino;
    }
  };

  std::string dir_;
  UniqueFd fd_;
  int wd_ = -1;
  // What the watch is on; nullopt: nothing (the path names no directory).
  std::optional<Identity> watched_;
  // Follow() has run once: the first call arms without asking a reload.
  bool followed_ = false;
  // Why the path could not be watched, logged once per distinct reason.
  std::string last_failure_;
  PolicyFileWriters writers_;
};

}  // namespace egress

#endif  // EGRESS_USERSPACE_DAEMON_POLICY_DIR_WATCH_H_
