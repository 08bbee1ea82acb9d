#include "userspace/common/instance_lock.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "userspace/common/errno_status.h"

namespace egress {
namespace {

std::string ReadHolder(const std::string& dir) {
  std::string link = absl::StrCat(dir, "/", kHolderName);
  char buf[PATH_MAX];
  ssize_t n = readlink(link.c_str(), buf, sizeof(buf) - 1);
  if (n <= 0) return "";
  return std::string(buf, n);
}

// Replaces the holder symlink in one rename: a reader never sees half of it.
void WriteHolder(const std::string& dir, const LockHolder& me) {
  std::string link = absl::StrCat(dir, "/", kHolderName);
  std::string staged = absl::StrCat(link, "_new");
  unlink(staged.c_str());
  if (symlink(HolderText(me).c_str(), staged.c_str()) != 0) return;
  if (rename(staged.c_str(), link.c_str()) != 0) unlink(staged.c_str());
}

}  // namespace

std::string HolderText(const LockHolder& holder) {
  return absl::StrCat("pid ", holder.pid, " socket ", holder.socket);
}

std::optional<LockHolder> ParseHolderText(absl::string_view text) {
  if (!absl::ConsumePrefix(&text, "pid ")) return std::nullopt;
  size_t space = text.find(' ');
  if (space == absl::string_view::npos) return std::nullopt;
  LockHolder h;
  if (!absl::SimpleAtoi(text.substr(0, space), &h.pid) || h.pid <= 0) {
    return std::nullopt;
  }
  text.remove_prefix(space);
  if (!absl::ConsumePrefix(&text, " socket ")) return std::nullopt;
  h.socket = std::string(text);
  return h;
}

absl::StatusOr<UniqueFd> LockDirectory(const std::string& dir,
                                       absl::string_view what,
                                       const LockHolder& me) {
  UniqueFd fd(open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd) return ErrnoStatus(errno, absl::StrCat("open ", what), dir);
  if (flock(fd.get(), LOCK_EX | LOCK_NB) == 0) {
    WriteHolder(dir, me);
    return fd;
  }
  if (errno != EWOULDBLOCK) {
    return ErrnoStatus(errno, absl::StrCat("lock ", what), dir);
  }
  std::optional<LockHolder> holder = ParseHolderText(ReadHolder(dir));
  std::string who = holder ? absl::StrCat("egressd pid ", holder->pid,
                                          " serving socket ", holder->socket)
                           : "another egressd";
  return absl::FailedPreconditionError(absl::StrCat(
      what, " ", dir, " is in use by ", who,
      ": one egressd per state and pin directory; stop it first, or give "
      "this one its own --state_dir and --bpffs"));
}

std::string KeepDirectoryLocked(const std::string& dir, absl::string_view what,
                                const LockHolder& me, UniqueFd* lock) {
  struct stat held, now;
  if (stat(dir.c_str(), &now) != 0) return "";  // gone: locked once it is back
  if (lock->valid() && fstat(lock->get(), &held) == 0 &&
      held.st_dev == now.st_dev && held.st_ino == now.st_ino) {
    if (ReadHolder(dir) == HolderText(me)) return "";
    WriteHolder(dir, me);
    if (ReadHolder(dir) != HolderText(me)) return "";  // cannot: still locked
    return absl::StrCat(what, " ", dir, ": wrote its holder record ",
                        kHolderName, " again (it was removed or changed)");
  }
  absl::StatusOr<UniqueFd> relocked = LockDirectory(dir, what, me);
  if (!relocked.ok()) {
    return absl::StrCat(what, " ", dir,
                        " was replaced while egressd ran and it cannot lock "
                        "the new one: ",
                        relocked.status().message());
  }
  *lock = *std::move(relocked);
  return absl::StrCat(what, " ", dir,
                      " was replaced while egressd ran: locked the new one, "
                      "so no second egressd starts on it");
}

}  // namespace egress
