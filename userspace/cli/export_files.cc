#include "userspace/cli/export_files.h"

#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "userspace/common/errno_status.h"
#include "userspace/common/unique_fd.h"

namespace egress::cli {

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
  for (const control::ExportFile& f : files) {
    std::string path = absl::StrCat(dir, "/", f.file);
    std::string tmp = path + ".tmp";
    // O_EXCL|O_NOFOLLOW: root never writes through a link someone planted.
    remove(tmp.c_str());
    UniqueFd fd(open(tmp.c_str(),
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
        remove(tmp.c_str());
        return ErrnoStatus(err, "write", tmp);
      }
      off += n;
    }
    if (fsync(fd.get()) != 0 || rename(tmp.c_str(), path.c_str()) != 0) {
      int err = errno;
      remove(tmp.c_str());
      return ErrnoStatus(err, "save", path);
    }
    printf("Wrote %s\n", path.c_str());
  }
  return absl::OkStatus();
}

}  // namespace egress::cli
