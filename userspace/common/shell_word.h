// Text for a POSIX shell: a hint like "egressctl allow unix PATH" is pasted
// into one, and PATH comes from a record, so from the process that made it.
#ifndef EGRESS_USERSPACE_COMMON_SHELL_WORD_H_
#define EGRESS_USERSPACE_COMMON_SHELL_WORD_H_

#include <string>

#include "absl/strings/string_view.h"

namespace egress {

// `word` as one word of a POSIX shell command line: as it is when it holds
// only [A-Za-z0-9/._@:+-] (and is not empty), else in single quotes, each '
// written '\''. "/run/a.sock" stays as it is; "/tmp/x;touch y" becomes
// '/tmp/x;touch y'; "" becomes ''.
std::string ShellWord(absl::string_view word);

}  // namespace egress

#endif  // EGRESS_USERSPACE_COMMON_SHELL_WORD_H_
