// The node name egressd puts into every record and into suggest/export
// headers. In a Kubernetes pod gethostname() is the pod's name, so the
// DaemonSet passes the node's name through the downward API (NODE_NAME).
#ifndef EGRESS_USERSPACE_DAEMON_NODE_NAME_H_
#define EGRESS_USERSPACE_DAEMON_NODE_NAME_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace egress {

// The first of `flag` (--node_name), `env` (NODE_NAME; null when unset) and
// `host` (gethostname()) that is not empty. A name given by the operator
// (flag or env) must be 1-253 printable ASCII characters without spaces
// (a Kubernetes node name is a DNS subdomain); InvalidArgument otherwise,
// naming where it came from.
absl::StatusOr<std::string> ChooseNodeName(absl::string_view flag,
                                           const char* env,
                                           absl::string_view host);

// gethostname(), "" when it fails.
std::string HostName();

}  // namespace egress

#endif  // EGRESS_USERSPACE_DAEMON_NODE_NAME_H_
