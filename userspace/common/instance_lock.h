// One egressd per state directory and per pin directory. Two daemons on the
// same state or pins would each re-apply what they hold and undo what the
// other acknowledged, so the second one must stop before it touches either.
//
// The lock is flock(LOCK_EX) on the directory itself: it works on any
// filesystem, bpffs included (which refuses regular files), and it follows
// the directory whatever path names it. The kernel drops it when the holder
// exits, however it exits. Who holds it is written beside it, as the target
// of a symlink named kHolderName (bpffs has symlinks but no regular files),
// so the second daemon can name the first.
#ifndef EGRESS_USERSPACE_COMMON_INSTANCE_LOCK_H_
#define EGRESS_USERSPACE_COMMON_INSTANCE_LOCK_H_

#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "userspace/common/unique_fd.h"

namespace egress {

// The symlink in a locked directory that names its holder.
inline constexpr char kHolderName[] = "egressd_holder";

// Who holds a lock: the process and the control socket it serves.
struct LockHolder {
  long pid = 0;
  std::string socket;
};

// "pid 1234 socket /run/egress/egressd.sock" and back (nullopt when the
// text is not of that form).
std::string HolderText(const LockHolder& holder);
std::optional<LockHolder> ParseHolderText(absl::string_view text);

// Takes the exclusive lock of `dir` (which must exist) for `me` and records
// `me` as its holder. `what` names the directory in messages ("state
// directory"). The lock lasts as long as the returned fd is open.
// Errors: FailedPrecondition when another process holds it, naming that
// holder's pid and socket when known; the errno status of opening the
// directory or of flock. A holder record that cannot be written is not an
// error (the lock still holds; a second daemon then names no holder).
absl::StatusOr<UniqueFd> LockDirectory(const std::string& dir,
                                       absl::string_view what,
                                       const LockHolder& me);

// Every second, from egressd's loop: keeps `lock` (LockDirectory's fd) on
// the directory `dir` names now, and its holder record there. The lock is
// on a directory, not a file, so removing the holder symlink frees nothing
// (it is written again); but a state directory removed and made again (a
// cleanup, tmpfiles' `d`) is a new, unlocked directory a second egressd
// could take: it is locked again as soon as it is there. Returns a line to
// log when something changed ("" otherwise), the errors included (another
// process took the new directory first).
std::string KeepDirectoryLocked(const std::string& dir, absl::string_view what,
                                const LockHolder& me, UniqueFd* lock);

}  // namespace egress

#endif  // EGRESS_USERSPACE_COMMON_INSTANCE_LOCK_H_
