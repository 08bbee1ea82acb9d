// Which DNS name each address of a target was resolved from, learned from the
// DNS-answer records of audit learning (dns_abi.h, egress_dns_answer_event),
// and until when: the learner attaches the name to the destinations the
// target reaches while that answer's binding would be live in enforce mode
// (suggest proposes domainNames rules from them). A name rule allows an
// address only until now + max(TTL, floor) of its last answer (docs/dns.md),
// so a connect after that was not made by the name, as enforcement sees it:
// it needs an address rule. Bounded per target: the oldest learned addresses
// are forgotten first. Pure logic; not thread-safe (the learner locks).
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

  // Binds every address of `answer`, received at `answer_ns` (unix time),
  // to its question name for `target` until answer_ns + max(its TTL,
  // `ttl_floor_s`), as the kernel binds it (a later answer extends it). An
  // address keeps the kMaxNamesPerAddress names it was last resolved from
  // (shared addresses are the rule: a CDN, a virtual host); an older one
  // goes first. An empty name, one with a byte other than a lower-case
  // letter, digit, '-', '_' or '.', or a question type other than A or AAAA
  // is ignored.
  void Remember(const std::string& target,
                const egress_dns_answer_event& answer, int64_t answer_ns,
                uint32_t ttl_floor_s);
  // The names `addr` (IPv4 in addr[0..3]; an IPv4-mapped IPv6 address
  // counts as IPv4) was bound to at `at_ns` (unix time), sorted and joined
  // by ',' (a connect to it may have meant any of them), or "".
  std::string NameOf(const std::string& target, uint8_t family,
                     const std::array<uint8_t, 16>& addr, int64_t at_ns) const;
  // As many names as the kernel binds to one address (dns_abi.h).
  static constexpr size_t kMaxNamesPerAddress = 4;
  void Forget(const std::string& target);
  size_t size(const std::string& target) const;

  // An address's names as kept: `key` opaque (hex), `names` joined by ','
  // in the order learned (the newest last), each as NAME@EXPIRY (unix ns).
  struct Kept {
    std::string key;
    std::string names;
  };
  // The addresses whose names changed since the last call, per target (for
  // learned.db, so that a restarted egressd still knows them).
  absl::flat_hash_map<std::string, std::vector<Kept>> TakeChanged();
  // Puts back what TakeChanged gave, oldest first; a key or name that does
  // not read back is skipped, and so is a name without its expiry (kept by
  // an older egressd: how long it was bound is unknown, so it names
  // nothing).
  void Restore(const std::string& target, const Kept& kept);

 private:
  struct Bound {
    std::string name;
    int64_t expires_ns = 0;  // unix time
  };
  struct Table {
    // address -> its names, the last resolved last
    absl::flat_hash_map<std::string, std::vector<Bound>> names;
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
