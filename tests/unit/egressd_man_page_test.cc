// docs/man/egressd.8 documents every flag egressd defines: a flag added to
// egressd_main.cc without a line in the man page fails here, so an admin
// reading `man egressd` never misses one (--dns_ttl_floor once was).
#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace egress {
namespace {

std::string ReadSource(const std::string& relative) {
  std::ifstream in(std::string(EGRESS_SOURCE_DIR) + "/" + relative);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

TEST(EgressdManPageTest, NamesEveryFlagOfEgressd) {
  const std::string main = ReadSource("userspace/daemon/egressd_main.cc");
  const std::string man = ReadSource("docs/man/egressd.8");
  ASSERT_FALSE(main.empty()) << "userspace/daemon/egressd_main.cc";
  ASSERT_FALSE(man.empty()) << "docs/man/egressd.8";
  const std::regex define(R"(DEFINE_[a-z0-9]+\(\s*([a-z0-9_]+)\s*,)");
  std::set<std::string> flags;
  for (auto it = std::sregex_iterator(main.begin(), main.end(), define);
       it != std::sregex_iterator(); ++it) {
    flags.insert((*it)[1].str());
  }
  // The regex must see the flags it is meant to check.
  EXPECT_GE(flags.size(), 20u);
  EXPECT_TRUE(flags.count("dns_ttl_floor"));
  for (const std::string& flag : flags) {
    // `.B \-\-flag` ending there or followed by its argument.
    const std::regex entry("(^|\n)\\.B \\\\-\\\\-" + flag + "[ \n]");
    EXPECT_TRUE(std::regex_search(man, entry))
        << "docs/man/egressd.8 has no entry `.B \\-\\-" << flag << "`";
  }
}

}  // namespace
}  // namespace egress
