// Random changes to a JSON text, for tests that hold two decoders of the
// same messages to the same outcome (request_line_test.cc,
// reply_line_test.cc): a value replaced, a member inserted (often one the
// object has already) or erased, a byte changed.
#ifndef EGRESS_TESTS_TESTING_JSON_MUTATOR_H_
#define EGRESS_TESTS_TESTING_JSON_MUTATOR_H_

#include <cstddef>
#include <cstdint>
#include <iterator>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"

namespace egress::testing {

class Mutator {
 public:
  // `keys`: member names InsertMember adds (default: the request's);
  // `values`: what ReplaceValue and InsertMember write (default: values
  // a request's members take, right and wrong).
  explicit Mutator(uint32_t seed, std::vector<std::string> keys = {},
                   std::vector<std::string> values = {})
      : rng_(seed),
        keys_(keys.empty() ? DefaultKeys() : std::move(keys)),
        values_(values.empty() ? DefaultValues() : std::move(values)) {}

  std::string Mutate(const std::string& text) {
    switch (Pick(4)) {
      case 0:
        return ReplaceValue(text);
      case 1:
        return InsertMember(text);
      case 2:
        return EraseMember(text);
      default:
        return ChangeBytes(text);
    }
  }

  // Values a request's members take, right and wrong.
  static std::vector<std::string> DefaultValues() {
    return {"-0",
            "0",
            "1",
            "-1",
            "7",
            "32",
            "33",
            "53",
            "65535",
            "65536",
            "4294967295",
            "4294967296",
            "9223372036854775807",
            "9223372036854775808",
            "18446744073709551615",
            "18446744073709551616",
            "1.5",
            "1e3",
            "-0.0",
            "true",
            "false",
            "null",
            "\"\"",
            "\"allow\"",
            "\"deny\"",
            "\"tcp\"",
            "\"udp\"",
            "\"icmp\"",
            "\"raw\"",
            "\"unix\"",
            "\"sctp\"",
            "\"enforce\"",
            "\"audit\"",
            "\"off\"",
            "\"all\"",
            "\"cgroup\"",
            "\"user\"",
            "\"text\"",
            "\"10.0.0.0/8\"",
            "\"10.0.0.1/8\"",
            "\"::1\"",
            "\"/run/x.sock\"",
            "\"@x\"",
            "\"x.sock\"",
            "\"api.example.com\"",
            "\"*.example.com\"",
            "\"bad name\"",
            "\"caf\\u00e9\"",
            "[]",
            "{}",
            "[1]",
            "[\"a\"]",
            "[{}]",
            "{\"proto\":\"tcp\",\"lo\":1,\"hi\":2}"};
  }
  // A request's member names, and a few no request has.
  static std::vector<std::string> DefaultKeys() {
    return {"cmd",     "name",         "rules",       "policies", "mode",
            "logging", "source",       "source_kind", "file",     "ephemeral",
            "cut",     "dry_run",      "target",      "last",     "number",
            "rule",    "format",       "id",          "action",   "spec",
            "ports",   "destinations", "host",        "comment",  "expires",
            "unix",    "names",        "proto",       "lo",       "hi",
            "sepc",    "aaa",          "zzz",         "",         "\\u0063md"};
  }

 private:
  size_t Pick(size_t n) {
    return std::uniform_int_distribution<size_t>(0, n - 1)(rng_);
  }

  const std::string& RandomValue() { return values_[Pick(values_.size())]; }

  // A value of the tree (not the root) replaced by another.
  std::string ReplaceValue(const std::string& text) {
    if (!nlohmann::json::accept(text)) return ChangeBytes(text);
    nlohmann::json j = nlohmann::json::parse(text);
    std::vector<nlohmann::json::json_pointer> all;
    Walk(j, nlohmann::json::json_pointer(), all);
    if (all.empty()) return text;
    j[all[Pick(all.size())]] = nlohmann::json::parse(RandomValue());
    return j.dump();
  }

  // `"key":value,` after a '{', the key often one the object has already.
  std::string InsertMember(const std::string& text) {
    std::vector<size_t> braces;
    for (size_t i = 0; i < text.size(); ++i) {
      if (text[i] == '{') braces.push_back(i);
    }
    if (braces.empty()) return text;
    const size_t at = braces[Pick(braces.size())] + 1;
    std::string member =
        absl::StrCat("\"", keys_[Pick(keys_.size())], "\":", RandomValue());
    if (text[at] != '}') member += ',';
    return text.substr(0, at) + member + text.substr(at);
  }

  std::string EraseMember(const std::string& text) {
    if (!nlohmann::json::accept(text)) return ChangeBytes(text);
    nlohmann::json j = nlohmann::json::parse(text);
    std::vector<nlohmann::json::json_pointer> all;
    Walk(j, nlohmann::json::json_pointer(), all);
    all.push_back(nlohmann::json::json_pointer());
    const nlohmann::json::json_pointer& p = all[Pick(all.size())];
    nlohmann::json& v = j[p];
    if (v.is_object() && !v.empty()) {
      auto it = v.begin();
      std::advance(it, Pick(v.size()));
      v.erase(it);
    } else if (v.is_array() && !v.empty()) {
      v.erase(Pick(v.size()));
    }
    return j.dump();
  }

  std::string ChangeBytes(const std::string& text) {
    static const char kBytes[] = "{}[]:,\"-0123456789.eE tfn\\u\xff\x01";
    std::string out = text;
    const size_t at = Pick(out.size() + 1);
    const char byte = kBytes[Pick(sizeof(kBytes) - 1)];
    switch (Pick(3)) {
      case 0:
        if (at < out.size()) out.erase(at, 1);
        break;
      case 1:
        out.insert(at, 1, byte);
        break;
      default:
        if (at < out.size()) out[at] = byte;
        break;
    }
    return out;
  }

  static void Walk(const nlohmann::json& j,
                   const nlohmann::json::json_pointer& at,
                   std::vector<nlohmann::json::json_pointer>& out) {
    if (j.is_object()) {
      for (const auto& [key, value] : j.items()) {
        out.push_back(at / key);
        Walk(value, at / key, out);
      }
    } else if (j.is_array()) {
      for (size_t i = 0; i < j.size(); ++i) {
        out.push_back(at / i);
        Walk(j[i], at / i, out);
      }
    }
  }

  std::mt19937 rng_;
  std::vector<std::string> keys_;
  std::vector<std::string> values_;
};

}  // namespace egress::testing

#endif  // EGRESS_TESTS_TESTING_JSON_MUTATOR_H_
