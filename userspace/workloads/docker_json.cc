#include "userspace/workloads/docker_json.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"

namespace egress::workloads {
namespace {

using json = nlohmann::json;

absl::StatusOr<json> Parse(absl::string_view body, absl::string_view what) {
  json j = json::parse(body.begin(), body.end(), nullptr,
                       /*allow_exceptions=*/false);
  if (j.is_discarded()) {
    return absl::InvalidArgumentError(
        absl::StrCat("the runtime's ", what, " is not JSON"));
  }
  return j;
}

std::string StringAt(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : "";
}

const json& ObjectAt(const json& j, const char* key) {
  static const json kEmpty = json::object();
  auto it = j.find(key);
  return it != j.end() && it->is_object() ? *it : kEmpty;
}

bool IsId(const std::string& id) {
  return !id.empty() && id.size() <= 128 &&
         std::all_of(id.begin(), id.end(), [](char c) {
           return absl::ascii_isxdigit(static_cast<unsigned char>(c));
         });
}

}  // namespace

bool NamesContainer(const Container& c, const std::string& ref) {
  if (ref.empty()) return false;
  if (ref == c.name || ref == c.id) return true;
  return ref.size() >= 4 && IsId(ref) && absl::StartsWith(c.id, ref);
}

absl::StatusOr<std::vector<std::string>> ParseContainerIds(
    absl::string_view body) {
  auto j = Parse(body, "container list");
  if (!j.ok()) return j.status();
  if (!j->is_array()) {
    return absl::InvalidArgumentError("the container list is not an array");
  }
  std::vector<std::string> ids;
  for (const json& c : *j) {
    if (!c.is_object()) continue;
    std::string id = StringAt(c, "Id");
    if (IsId(id)) ids.push_back(std::move(id));
  }
  return ids;
}

absl::StatusOr<Container> ParseContainerInspect(absl::string_view body) {
  auto j = Parse(body, "container inspect answer");
  if (!j.ok()) return j.status();
  if (!j->is_object()) {
    return absl::InvalidArgumentError(
        "the container inspect answer is not an "
        "object");
  }
  Container c;
  c.id = StringAt(*j, "Id");
  if (!IsId(c.id)) {
    return absl::InvalidArgumentError(
        absl::StrCat("container id '", c.id, "' is not hexadecimal"));
  }
  c.name = StringAt(*j, "Name");
  if (absl::StartsWith(c.name, "/")) c.name.erase(0, 1);
  const json& config = ObjectAt(*j, "Config");
  c.image = StringAt(config, "Image");
  for (const auto& [k, v] : ObjectAt(config, "Labels").items()) {
    if (v.is_string()) c.labels[k] = v.get<std::string>();
  }
  const json& state = ObjectAt(*j, "State");
  if (auto r = state.find("Running"); r != state.end() && r->is_boolean()) {
    c.running = r->get<bool>();
  }
  if (auto p = state.find("Pid"); p != state.end() && p->is_number_integer()) {
    const int64_t pid = p->get<int64_t>();
    c.pid = pid > 0 && pid < (1 << 22) ? static_cast<int>(pid) : 0;
  }
  if (c.pid == 0) c.running = false;
  return c;
}

absl::StatusOr<ContainerEvent> ParseDockerEvent(absl::string_view line) {
  auto j = Parse(line, "event");
  if (!j.ok()) return j.status();
  ContainerEvent e;
  if (!j->is_object()) return e;
  std::string type = StringAt(*j, "Type");
  if (!type.empty() && type != "container") return e;
  std::string action = StringAt(*j, "Action");
  if (action.empty()) action = StringAt(*j, "status");
  e.id = StringAt(ObjectAt(*j, "Actor"), "ID");
  if (e.id.empty()) e.id = StringAt(*j, "id");
  if (!IsId(e.id)) return ContainerEvent{};
  if (action == "create") {
    e.kind = ContainerEvent::Kind::kCreate;
    const json& attributes = ObjectAt(ObjectAt(*j, "Actor"), "Attributes");
    e.name = StringAt(attributes, "name");
    if (absl::StartsWith(e.name, "/")) e.name.erase(0, 1);
    e.image = StringAt(attributes, "image");
    for (const auto& [k, v] : attributes.items()) {
      if (v.is_string() && k != "name" && k != "image") {
        e.labels[k] = v.get<std::string>();
      }
    }
  } else if (action == "start") {
    e.kind = ContainerEvent::Kind::kStart;
  } else if (action == "die" || action == "destroy" || action == "stop" ||
             action == "remove") {  // Podman's word for destroy
    e.kind = ContainerEvent::Kind::kStop;
  } else if (action == "rename") {
    e.kind = ContainerEvent::Kind::kRename;
  }
  return e;
}

}  // namespace egress::workloads
