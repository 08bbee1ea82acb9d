#include "userspace/cli/run_identity.h"

#include <algorithm>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"

namespace egress::cli {
namespace {

// At most this many supplementary groups (the kernel's NGROUPS_MAX).
constexpr size_t kMaxGroups = 65536;

struct Entry {
  std::string name;
  uint32_t id = 0;
  uint32_t gid = 0;                  // passwd: the primary group
  std::vector<std::string> members;  // group: the member names
};

// An id: a decimal number other than (uid_t)-1, which means "unchanged".
std::optional<uint32_t> IdOf(absl::string_view text) {
  uint32_t id;
  if (text.empty() || !absl::SimpleAtoi(text, &id) || id == UINT32_MAX ||
      text.find_first_not_of("0123456789") != absl::string_view::npos) {
    return std::nullopt;
  }
  return id;
}

// The entries of /etc/passwd (name:pw:uid:gid:...) or /etc/group
// (name:pw:gid:members); comments, NIS "+"/"-" lines and malformed lines
// are left out.
std::vector<Entry> Entries(const std::string& text, bool group) {
  std::vector<Entry> out;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (line.empty() || line[0] == '#' || line[0] == '+' || line[0] == '-') {
      continue;
    }
    std::vector<absl::string_view> f = absl::StrSplit(line, ':');
    if (f.size() < (group ? 3u : 4u) || f[0].empty()) continue;
    std::optional<uint32_t> id = IdOf(f[2]);
    if (!id) continue;
    Entry e;
    e.name = std::string(f[0]);
    e.id = *id;
    if (group) {
      if (f.size() >= 4) {
        for (absl::string_view m :
             absl::StrSplit(f[3], ',', absl::SkipEmpty())) {
          e.members.emplace_back(m);
        }
      }
    } else {
      std::optional<uint32_t> gid = IdOf(f[3]);
      if (!gid) continue;
      e.gid = *gid;
    }
    out.push_back(std::move(e));
  }
  return out;
}

const Entry* ByName(const std::vector<Entry>& entries, absl::string_view name) {
  for (const Entry& e : entries) {
    if (e.name == name) return &e;
  }
  return nullptr;
}

const Entry* ById(const std::vector<Entry>& entries, uint32_t id) {
  for (const Entry& e : entries) {
    if (e.id == id) return &e;
  }
  return nullptr;
}

// The user's identity from the passwd entry or the number `uid`, the
// group from `group_arg` when given.
absl::StatusOr<RunIdentity> IdentityOf(const Entry* user, uint32_t uid,
                                       absl::string_view option,
                                       const std::string& group_arg,
                                       std::optional<uint32_t> default_gid,
                                       const std::vector<Entry>& groups) {
  RunIdentity id;
  id.uid = uid;
  if (user != nullptr) {
    id.name = user->name;
    id.gid = user->gid;
  } else if (default_gid) {
    id.gid = *default_gid;
  } else if (group_arg.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        option, ": uid ", uid,
        " is not in /etc/passwd, so its group is not known: give it with ",
        option == "--user" ? "--group GROUP|GID" : "--user UID --group GID"));
  }
  if (default_gid) id.gid = *default_gid;
  if (!group_arg.empty()) {
    if (const Entry* g = ByName(groups, group_arg); g != nullptr) {
      id.gid = g->id;
    } else if (std::optional<uint32_t> gid = IdOf(group_arg)) {
      id.gid = *gid;
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("--group: no group '", group_arg,
                       "' in /etc/group (give a name there or a number)"));
    }
  }
  id.groups.push_back(id.gid);
  if (!id.name.empty()) {
    for (const Entry& g : groups) {
      if (id.groups.size() >= kMaxGroups) break;
      if (std::find(g.members.begin(), g.members.end(), id.name) !=
              g.members.end() &&
          std::find(id.groups.begin(), id.groups.end(), g.id) ==
              id.groups.end()) {
        id.groups.push_back(g.id);
      }
    }
  }
  return id;
}

}  // namespace

absl::StatusOr<std::optional<RunIdentity>> RunIdentityOf(
    const RunIdentityInputs& in) {
  const std::vector<Entry> users = Entries(in.passwd, /*group=*/false);
  const std::vector<Entry> groups = Entries(in.group_file, /*group=*/true);
  if (!in.user.empty()) {
    const Entry* user = ByName(users, in.user);
    std::optional<uint32_t> uid;
    if (user != nullptr) {
      uid = user->id;
    } else if ((uid = IdOf(in.user))) {
      user = ById(users, *uid);
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("--user: no user '", in.user,
                       "' in /etc/passwd (give a name there or a number)"));
    }
    return IdentityOf(user, *uid, "--user", in.group, std::nullopt, groups);
  }
  if (!in.group.empty()) {
    return absl::InvalidArgumentError(
        "--group goes with --user: the command's user must change for its "
        "group to matter");
  }
  if (in.euid != 0 || in.sudo_uid.empty()) return std::nullopt;
  std::optional<uint32_t> uid = IdOf(in.sudo_uid);
  if (!uid) {
    return absl::InvalidArgumentError(absl::StrCat(
        "SUDO_UID is '", in.sudo_uid, "', not a uid: give --user USER|UID"));
  }
  std::optional<uint32_t> gid;
  if (!in.sudo_gid.empty()) {
    gid = IdOf(in.sudo_gid);
    if (!gid) {
      return absl::InvalidArgumentError(absl::StrCat(
          "SUDO_GID is '", in.sudo_gid, "', not a gid: give --user USER|UID"));
    }
  }
  absl::StatusOr<RunIdentity> id =
      IdentityOf(ById(users, *uid), *uid, "SUDO_UID", "", gid, groups);
  if (!id.ok()) return id.status();
  id->from_sudo = true;
  return std::optional<RunIdentity>(*std::move(id));
}

}  // namespace egress::cli
