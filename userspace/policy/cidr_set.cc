#include "userspace/policy/cidr_set.h"

#include <algorithm>
#include <tuple>
#include <utility>

namespace egress::policy {
namespace {

// Flips bit `i` (0 = most significant of addr[0]).
void FlipBit(std::array<uint8_t, 16>& a, int i) {
  a[i / 8] ^= static_cast<uint8_t>(1 << (7 - i % 8));
}

// The network `c` is one half of.
Cidr Parent(const Cidr& c) {
  Cidr parent = c;
  parent.prefix_len = static_cast<uint8_t>(c.prefix_len - 1);
  parent.addr = MaskedAddress(parent.addr, parent.prefix_len);
  return parent;
}

// True if `lo` and `hi` are the lower and upper half of one network.
bool Halves(const Cidr& lo, const Cidr& hi) {
  if (lo.family != hi.family || lo.prefix_len != hi.prefix_len ||
      lo.prefix_len == 0) {
    return false;
  }
  Cidr flipped = lo;
  FlipBit(flipped.addr, lo.prefix_len - 1);
  return flipped == hi && CidrLess(lo, hi);
}

}  // namespace

bool CidrLess(const Cidr& a, const Cidr& b) {
  return std::tie(a.family, a.addr, a.prefix_len) <
         std::tie(b.family, b.addr, b.prefix_len);
}

std::vector<Cidr> SubtractCidrs(const Cidr& cidr,
                                absl::Span<const Cidr> excepts) {
  std::vector<Cidr> result = {cidr};
  for (const Cidr& e : excepts) {
    if (e.family != cidr.family || !cidr.Contains(e)) continue;
    std::vector<Cidr> next;
    for (const Cidr& r : result) {
      if (e.Contains(r)) continue;  // removed entirely
      if (!r.Contains(e)) {
        next.push_back(r);
        continue;
      }
      // r strictly contains e: keep, at every depth between them, the half
      // that does not lead to e.
      for (int d = r.prefix_len; d < e.prefix_len; ++d) {
        Cidr piece = e;
        FlipBit(piece.addr, d);
        piece.prefix_len = static_cast<uint8_t>(d + 1);
        piece.addr = MaskedAddress(piece.addr, d + 1);
        next.push_back(piece);
      }
    }
    result = std::move(next);
  }
  std::sort(result.begin(), result.end(), CidrLess);
  return result;
}

std::vector<Cidr> NormalizeCidrs(absl::Span<const Cidr> networks) {
  std::vector<Cidr> sorted(networks.begin(), networks.end());
  std::sort(sorted.begin(), sorted.end(), CidrLess);
  // Sorted, a network comes right after the kept network holding it (the
  // kept ones are disjoint), and two halves come one after the other; a
  // joined pair may complete a half one level up, hence the loop.
  std::vector<Cidr> out;
  for (const Cidr& c : sorted) {
    if (!out.empty() && out.back().Contains(c)) continue;
    out.push_back(c);
    while (out.size() >= 2 && Halves(out[out.size() - 2], out.back())) {
      const Cidr parent = Parent(out.back());
      out.pop_back();
      out.back() = parent;
    }
  }
  return out;
}

bool NormalizedContains(absl::Span<const Cidr> normalized, const Cidr& inner) {
  // The only candidate is the last network that starts at or before `inner`.
  auto it =
      std::upper_bound(normalized.begin(), normalized.end(), inner, CidrLess);
  if (it == normalized.begin()) return false;
  --it;
  return it->Contains(inner);
}

}  // namespace egress::policy
