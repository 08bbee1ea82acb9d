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

// Appends `net` minus `removed` (sorted, disjoint, all inside `net`) to *out
// in CidrLess order: halve `net` until a half holds nothing to remove (kept
// whole) or is removed itself. Each removed network costs at most one split
// per bit of its prefix, so the time is linear in their number.
void SubtractSorted(const Cidr& net, absl::Span<const Cidr> removed,
                    std::vector<Cidr>* out, SubtractWork* work) {
  ++work->pieces;
  if (removed.empty()) {
    out->push_back(net);
    return;
  }
  ++work->tests;
  if (removed.front().Contains(net)) return;  // inside `net`: equal to it
  Cidr lower = net;
  lower.prefix_len = static_cast<uint8_t>(net.prefix_len + 1);
  Cidr upper = lower;
  FlipBit(upper.addr, net.prefix_len);
  const auto split =
      std::partition_point(removed.begin(), removed.end(), [&](const Cidr& r) {
        ++work->tests;
        return lower.Contains(r);
      });
  const size_t in_lower = static_cast<size_t>(split - removed.begin());
  SubtractSorted(lower, removed.first(in_lower), out, work);
  SubtractSorted(upper, removed.subspan(in_lower), out, work);
}

}  // namespace

bool CidrLess(const Cidr& a, const Cidr& b) {
  return std::tie(a.family, a.addr, a.prefix_len) <
         std::tie(b.family, b.addr, b.prefix_len);
}

std::vector<Cidr> SubtractCidrs(const Cidr& cidr,
                                absl::Span<const Cidr> excepts,
                                SubtractWork* work) {
  std::vector<Cidr> inside;
  for (const Cidr& e : excepts) {
    if (e.family == cidr.family && cidr.Contains(e)) inside.push_back(e);
  }
  // Sorted and disjoint, the networks below any split point form one run.
  const std::vector<Cidr> removed = NormalizeCidrs(inside);
  std::vector<Cidr> out;
  SubtractWork counted;
  SubtractSorted(cidr, removed, &out, &counted);
  if (work != nullptr) *work = counted;
  return out;
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
