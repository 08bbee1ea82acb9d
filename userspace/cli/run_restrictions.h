// What `egressctl run` refuses its command besides the target's rules:
// socket families outside an allow-list (as systemd's
// RestrictAddressFamilies=), new user namespaces, and io_uring (which can
// create sockets without the socket() system call). Pure: the names, the
// parsed options, the filter's ranges and the line printed for a refusal;
// the seccomp filter that enforces it is run_seccomp.h.
#ifndef EGRESS_USERSPACE_CLI_RUN_RESTRICTIONS_H_
#define EGRESS_USERSPACE_CLI_RUN_RESTRICTIONS_H_

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace egress::cli {

// A socket family the kernel knows: its number and its short name
// ("packet" for AF_PACKET).
struct SocketFamily {
  int number;
  absl::string_view name;
};

// Every family of Linux 6.x (AF_UNSPEC excluded), in number order.
absl::Span<const SocketFamily> KnownFamilies();

// "packet", "AF_PACKET", "PF_PACKET" (any case) or "local" (= unix).
// InvalidArgument naming the word, with the closest known name.
absl::StatusOr<int> ParseFamily(absl::string_view word);

// "AF_PACKET"; "family N" for a number no family has.
std::string FamilyName(int family);
// "packet"; the number for one no family has.
std::string FamilyShortName(int family);

// The families a command may use unless told otherwise: unix, inet, inet6
// and netlink (glibc's getaddrinfo(AI_ADDRCONFIG) and if_nameindex() ask
// the kernel through netlink; it talks to the kernel, never the network).
std::vector<int> DefaultFamilies();

struct RunRestrictions {
  bool any_family = false;            // --any-family
  std::vector<int> allowed_families;  // sorted, no duplicates
  bool allow_userns = false;          // --allow-userns
  bool allow_io_uring = false;        // --allow-io-uring

  bool FamilyAllowed(int family) const;
  // io_uring is refused while a family list is in force (IORING_OP_SOCKET
  // does not pass the socket() system call), unless --allow-io-uring.
  bool RefusesIoUring() const { return !any_family && !allow_io_uring; }
  // Whether anything at all is refused (else no filter is installed).
  bool RefusesAnything() const {
    return !any_family || !allow_userns || RefusesIoUring();
  }
};

// The options of `run`: each `--allow-family` value is a comma list of
// family names added to DefaultFamilies(). InvalidArgument for an unknown
// name, or for --allow-family together with --any-family.
absl::StatusOr<RunRestrictions> MakeRunRestrictions(
    const std::vector<std::string>& allow_family_values, bool any_family,
    bool allow_userns, bool allow_io_uring);

// Which values of socket()'s `domain` argument the filter refuses, as
// three kinds of comparison on the full 64-bit register (so that a value
// with high bits set, which the kernel truncates to an int, is refused
// too): below `lowest`, above `highest`, and each of `between`.
struct RefusedFamilies {
  uint64_t lowest = 0;   // refuse domain < lowest
  uint64_t highest = 0;  // refuse domain > highest
  std::vector<uint64_t> between;
};
// Only meaningful when !r.any_family (the list is never empty then).
RefusedFamilies RefusedFamilyValues(const RunRestrictions& r);

// What a refusal was, for the line on stderr.
enum class RefusedCall {
  kFamily,         // socket()/socketpair() of a family not allowed
  kUserNamespace,  // unshare()/clone() with CLONE_NEWUSER
  kIoUring,        // io_uring_setup()
};

// The line `run` prints for one refusal, e.g. "egressctl run: refused
// socket(AF_PACKET) by pid 1234 (python3): family not allowed;
// --allow-family packet allows it". `call` is the system call's name,
// `family` only read for kFamily.
std::string RefusalLine(RefusedCall what, absl::string_view call, int family,
                        pid_t pid, absl::string_view comm);

}  // namespace egress::cli

#endif  // EGRESS_USERSPACE_CLI_RUN_RESTRICTIONS_H_
