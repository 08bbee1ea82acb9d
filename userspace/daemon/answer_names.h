// Which DNS name each address of a target was resolved from, learned from the
// DNS-answer records of audit learning (dns_abi.h, egress_dns_answer_event):
// the learner attaches the name to the destinations the target then reaches
// (suggest proposes domainNames rules from them). Bounded per target: the
// oldest learned addresses are forgotten first. Pure logic; not thread-safe
// (the learner locks).
#ifndef EGRESS_USERSPACE_DAEMON_ANSWER_NAMES_H_
#define EGRESS_USERSPACE_DAEMON_ANSWER_NAMES_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/string_view.h"
#include "egress/dns_abi.h"

namespace egress {

class AnswerNames {
 public:
  explicit AnswerNames(size_t max_per_target = 4096)
      : max_per_target_(max_per_target) {}

  // Binds every address of `answer` to its question name for `target`. An
  // address keeps the kMaxNamesPerAddress names it was last resolved from
  // (shared addresses are the rule: a CDN, a virtual host); an older one
  // goes first. An empty name, one with a byte other than a lower-case
  // letter, digit, '-', '_' or '.', or a question type other than A or AAAA
  // is ignored.
  void Remember(const std::string& target,
                const egress_dns_answer_event& answer);
  // The names `addr` (IPv4 in addr[0..3]; an IPv4-mapped IPv6 address
  // counts as IPv4) was resolved from, sorted and joined by ',' (a
  // connect to it may have meant any of them), or "".
  std::string NameOf(const std::string& target, uint8_t family,
                     const std::array<uint8_t, 16>& addr) const;
  // As many names as the kernel binds to one address (dns_abi.h).
  static constexpr size_t kMaxNamesPerAddress = 4;
  void Forget(const std::string& target);
  size_t size(const std::string& target) const;

  // An address's names as kept: `key` opaque (hex), `names` joined by ','
  // in the order learned (the newest last).
  struct Kept {
    std::string key;
    std::string names;
  };
  // The addresses whose names changed since the last call, per target (for
  // learned.db, so that a restarted egressd still knows them).
  absl::flat_hash_map<std::string, std::vector<Kept>> TakeChanged();
  // Puts back what TakeChanged gave, oldest first; a key or name that does
  // not read back is skipped.
  void Restore(const std::string& target, const Kept& kept);

 private:
  struct Table {
    // address -> its names, the last resolved last
    absl::flat_hash_map<std::string, std::vector<std::string>> names;
    std::deque<std::string> order;             // addresses, first learned first
    absl::flat_hash_set<std::string> changed;  // since TakeChanged
  };
  // family (1 byte) and the 16 address bytes.
  static std::string Key(uint8_t family, const std::array<uint8_t, 16>& addr);

  size_t max_per_target_;
  absl::flat_hash_map<std::string, Table> targets_;
};

}  // namespace egress

#endif  // EGRESS_USERSPACE_DAEMON_ANSWER_NAMES_H_
