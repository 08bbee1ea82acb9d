// What an admin would use instead of egress, for egress_bench's rows: the
// same rules as an nftables table that matches the measured cgroup with
// `socket cgroupv2` on the output hook, in the two shapes admins write:
// a set (one lookup per packet, in concatenated interval sets of
// address . protocol . port) or a linear list (one nft rule per rule,
// evaluated in order). Deny rules come first in either shape, as egress
// decides (a deny beats an allow); what no rule allows is rejected (TCP with
// a reset, so a refused connect fails at once with ECONNREFUSED; anything
// else with an ICMP admin-prohibited, which a local sendto sees as EPERM).
// Stateless, like egress: conntrack would be paid by the baseline too.
// Except for a server's replies (egress_bench's `udp reply` rows): nft has
// no other way to let a socket answer peers no rule names than what admins
// write for it, `ct state established,related accept` ahead of the rules
// (NftReplies::kEstablished). That rule turns conntrack on for the whole
// network namespace while the table is loaded, so the baseline slices then
// pay for conntrack too.
#ifndef EGRESS_BENCH_NFT_ALTERNATIVE_H_
#define EGRESS_BENCH_NFT_ALTERNATIVE_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "userspace/policy/rule.h"

namespace egress::bench {

enum class NftShape { kSet, kLinear };
// kStateless: the rules alone; kEstablished: a conntrack accept of
// established and related packets first (replies), then the rules.
enum class NftReplies { kStateless, kEstablished };

const char* NftShapeName(NftShape shape);  // "set", "linear"

// The nft script (for `nft -f`) of table `inet <table>`: packets of
// sockets in the cgroup at `cgroup` (its path below /sys/fs/cgroup, as nft
// resolves it) and `level` (its depth below the cgroup2 root) are judged
// by `rules` (after the conntrack accept with NftReplies::kEstablished);
// others pass untouched. InvalidArgument for a rule nft cannot express the
// same way here (names, unix paths, ICMP, raw).
absl::StatusOr<std::string> NftScript(const std::string& table,
                                      const std::string& cgroup, int level,
                                      NftShape shape,
                                      const std::vector<policy::Rule>& rules,
                                      NftReplies replies);

// The path of cgroup directory `dir` as nft's cgroupv2 match names it
// (below /sys/fs/cgroup: "unified/x" on a hybrid layout, "x" on a unified
// one). InvalidArgument when `dir` is not below /sys/fs/cgroup.
absl::StatusOr<std::string> NftCgroupPath(const std::string& dir);

// A table loaded with `nft -f`, deleted with it.
class NftTable {
 public:
  static absl::StatusOr<std::unique_ptr<NftTable>> Load(
      const std::string& name, const std::string& script);
  NftTable(const NftTable&) = delete;
  NftTable& operator=(const NftTable&) = delete;
  ~NftTable();

 private:
  explicit NftTable(std::string name) : name_(std::move(name)) {}
  std::string name_;
};

}  // namespace egress::bench

#endif  // EGRESS_BENCH_NFT_ALTERNATIVE_H_
