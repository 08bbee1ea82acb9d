#include "userspace/policy/public_suffix.h"

#include <libpsl.h>

#include <string>

namespace egress::policy {
namespace {

// Loaded once and never freed: the list is read-only and shared by threads.
const psl_ctx_t* List() {
  static const psl_ctx_t* const list = [] {
    // The newest of the host's list and the built-in one.
    const psl_ctx_t* latest = psl_latest(nullptr);
    return latest != nullptr ? latest : psl_builtin();
  }();
  return list;
}

}  // namespace

bool IsPublicSuffix(absl::string_view domain) {
  const psl_ctx_t* list = List();
  if (list == nullptr) return true;
  const std::string text(domain);
  return psl_is_public_suffix2(list, text.c_str(), PSL_TYPE_ANY) != 0;
}

}  // namespace egress::policy
