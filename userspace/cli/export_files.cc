#include "userspace/cli/export_files.h"

#include <stdio.h>
#include <sys/stat.h>

#include <fstream>

#include "absl/strings/str_cat.h"
#include "userspace/common/errno_status.h"

namespace egress::cli {

absl::Status WriteExport(const nlohmann::json& response,
                         const std::string& dir) {
  const nlohmann::json& files = response["files"];
  if (!files.is_array() || files.empty()) {
    return absl::FailedPreconditionError("no targets to export");
  }
  if (dir.empty()) {
    if (files.size() > 1) {
      return absl::InvalidArgumentError(absl::StrCat(
          files.size(),
          " targets: name one with --target NAME, or write them all with "
          "--dir DIR"));
    }
    fputs(files[0]["yaml"].get<std::string>().c_str(), stdout);
    return absl::OkStatus();
  }
  if (mkdir(dir.c_str(), 0750) != 0 && errno != EEXIST) {
    return ErrnoStatus(errno, "mkdir", dir);
  }
  for (const nlohmann::json& f : files) {
    std::string path = absl::StrCat(dir, "/", f["file"].get<std::string>());
    std::string tmp = path + ".tmp";
    {
      std::ofstream out(tmp, std::ios::trunc);
      out << f["yaml"].get<std::string>();
      out.close();
      if (!out) return ErrnoStatus(errno, "write", tmp);
    }
    if (rename(tmp.c_str(), path.c_str()) != 0) {
      int err = errno;
      remove(tmp.c_str());
      return ErrnoStatus(err, "rename", path);
    }
    printf("Wrote %s\n", path.c_str());
  }
  return absl::OkStatus();
}

}  // namespace egress::cli
