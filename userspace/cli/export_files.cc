#include "userspace/cli/export_files.h"

#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "userspace/common/errno_status.h"
#include "userspace/common/status_macros.h"
#include "userspace/common/unique_fd.h"

namespace egress::cli {

absl::Status CheckExportDir(const std::string& dir, const struct stat& st,
                            uid_t euid) {
  if (st.st_uid != euid) {
    return absl::FailedPreconditionError(absl::StrCat(
        "--dir ", dir, ": owned by uid ", st.st_uid, ", not by you (uid ", euid,
        "); export to a directory of your own"));
  }
  if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "--dir %s: writable by group or others (mode %04o); export to a "
        "directory only you can write (chmod go-w %s)",
        dir, st.st_mode & 07777, dir));
  }
  return absl::OkStatus();
}

absl::Status WriteExport(const control::ExportResponse& response,
                         const std::string& dir) {
  const std::vector<control::ExportFile>& files = response.files;
  if (files.empty()) {
    return absl::FailedPreconditionError("no targets to export");
  }
  if (dir.empty()) {
    if (files.size() > 1) {
      return absl::InvalidArgumentError(absl::StrCat(
          files.size(),
          " targets: name one with --target NAME, or write them all with "
          "--dir DIR"));
    }
    fputs(files[0].yaml.c_str(), stdout);
    return absl::OkStatus();
  }
  if (mkdir(dir.c_str(), 0750) != 0 && errno != EEXIST) {
    return ErrnoStatus(errno, "mkdir", dir);
  }
  // The files go in through this fd: the directory checked is the one
  // written, even if a path component is swapped meanwhile.
  UniqueFd dir_fd(open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dir_fd) return ErrnoStatus(errno, "open", dir);
  struct stat st;
  if (fstat(dir_fd.get(), &st) != 0) return ErrnoStatus(errno, "stat", dir);
  EGRESS_RETURN_IF_ERROR(CheckExportDir(dir, st, geteuid()));
  for (const control::ExportFile& f : files) {
    std::string path = absl::StrCat(dir, "/", f.file);
    std::string tmp_name = f.file + ".tmp";
    const std::string tmp = absl::StrCat(dir, "/", tmp_name);
    // O_EXCL|O_NOFOLLOW: root never writes through a link someone planted.
    unlinkat(dir_fd.get(), tmp_name.c_str(), 0);
    UniqueFd fd(openat(dir_fd.get(), tmp_name.c_str(),
                       O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                       0640));
    if (!fd) return ErrnoStatus(errno, "create", tmp);
    const std::string& text = f.yaml;
    size_t off = 0;
    while (off < text.size()) {
      ssize_t n = write(fd.get(), text.data() + off, text.size() - off);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        int err = errno;
        unlinkat(dir_fd.get(), tmp_name.c_str(), 0);
        return ErrnoStatus(err, "write", tmp);
      }
      off += n;
    }
    if (fsync(fd.get()) != 0 || renameat(dir_fd.get(), tmp_name.c_str(),
                                         dir_fd.get(), f.file.c_str()) != 0) {
      int err = errno;
      unlinkat(dir_fd.get(), tmp_name.c_str(), 0);
      return ErrnoStatus(err, "save", path);
    }
    printf("Wrote %s\n", path.c_str());
  }
  return absl::OkStatus();
}

}  // namespace egress::cli
