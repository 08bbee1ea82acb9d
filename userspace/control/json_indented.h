// `egressctl -o json` prints egressd's reply as nlohmann::json's tree dumps
// it with an indent of 2, without the reply's "ok". The reply of a `list` of
// 100,000 rules is a line of tens of MB: parsing it into the tree, dumping
// and freeing it cost egressctl most of a second. IndentedJsonText writes
// the same bytes from simdjson's DOM (json_view_simdjson.h).
#ifndef EGRESS_USERSPACE_CONTROL_JSON_INDENTED_H_
#define EGRESS_USERSPACE_CONTROL_JSON_INDENTED_H_

#include <optional>
#include <string>

#include "absl/functional/function_ref.h"
#include "absl/strings/string_view.h"

namespace egress::control {

// policy::JsonText(tree, 2) of the object `text` parses to, its member
// `drop` (at the top only) erased: members sorted by name, a name given
// twice kept once with its last value, as the tree keeps them. nullopt when
// the DOM cannot say what the tree would (ParseForView declines the text),
// the text is not an object, or it holds a number that is not an integer
// (the tree's way of writing those is its own): the caller goes the tree's
// way, which egressd's replies never need.
std::optional<std::string> IndentedJsonText(absl::string_view text,
                                            absl::string_view drop);
// The same text handed to `write` in pieces of about 1 MiB as it is made
// (egressctl prints each: 44 MB of text for 100,000 rules need not be held
// whole), or false, with nothing written, where IndentedJsonText declines.
bool WriteIndentedJson(absl::string_view text, absl::string_view drop,
                       absl::FunctionRef<void(absl::string_view)> write);

}  // namespace egress::control

#endif  // EGRESS_USERSPACE_CONTROL_JSON_INDENTED_H_
