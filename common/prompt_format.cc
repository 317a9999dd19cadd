#include "common/prompt_format.h"

#include <nlohmann/json.hpp>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"

namespace medeval {
namespace {

bool ContainsAny(absl::string_view s, std::initializer_list<absl::string_view> words) {
  for (absl::string_view w : words) {
    if (absl::StrContains(s, w)) return true;
  }
  return false;
}

// The first {...} object after the word "json" in the prompt, if it parses.
std::string FindJsonTemplate(absl::string_view q) {
  std::string lower = absl::AsciiStrToLower(q);
  size_t at = lower.find("json");
  while (at != std::string::npos) {
    size_t open = q.find('{', at);
    if (open == absl::string_view::npos) return "";
    int depth = 0;
    for (size_t i = open; i < q.size(); ++i) {
      if (q[i] == '{') ++depth;
      if (q[i] == '}' && --depth == 0) {
        std::string candidate(q.substr(open, i - open + 1));
        if (nlohmann::json::accept(candidate)) return candidate;
        break;
      }
    }
    at = lower.find("json", at + 4);
  }
  return "";
}

// Whether the JSON asked for is a list: said in words ("JSON 数组"), or the
// example after the word "json" opens with '[' before any '{'.
bool AsksForJsonArray(absl::string_view q, const std::string& lower) {
  if (ContainsAny(lower,
                  {"json 数组", "json数组", "json 列表", "json列表", "json array", "json list"})) {
    return true;
  }
  size_t at = lower.find("json");
  if (at == std::string::npos) return false;
  size_t open = q.find_first_of("[{", at);
  return open != absl::string_view::npos && q[open] == '[';
}

}  // namespace

PromptFormat DetectPromptFormat(absl::string_view q) {
  PromptFormat f;
  f.options = ParseOptions(q);
  const std::string lower = absl::AsciiStrToLower(q);
  // A prompt that asks for JSON and lists no options is not a choice question
  // even when it says "不定项" (MedReportQC: any number of error types).
  const bool json_no_options = absl::StrContains(lower, "json") && f.options.size() < 2;
  if (json_no_options) {
    // falls through to the JSON case below
  } else if (ContainsAny(q, {"多选", "多项选择", "一个或多个", "不定项", "所有答案", "所有正确"})) {
    f.choice = ChoiceKind::kMulti;
  } else if (ContainsAny(q, {"单选", "单项选择", "选择题", "选项字母", "选出一个", "最佳选项"}) ||
             (f.options.size() >= 2 && ContainsAny(q, {"选项", "选择"}) &&
              !absl::StrContains(lower, "json"))) {
    f.choice = ChoiceKind::kSingle;
  }
  if (f.choice != ChoiceKind::kNone) {
    f.brackets = ContainsAny(q, {"<>", "＜＞", "放在<", "填写到<"});
    if (f.choice == ChoiceKind::kMulti &&
        ContainsAny(q, {"\",\"分隔", "','分隔", "“,”分隔", "逗号分隔", "逗号隔开"})) {
      f.multi_separator = ", ";
    }
    if (f.options.size() < 2) {
      f.options.clear();
      for (char c = 'A'; c <= 'E'; ++c) f.options.push_back({c, std::string(1, c)});
    }
    return f;
  }
  if (absl::StrContains(lower, "json")) {
    f.json = true;
    f.json_array = AsksForJsonArray(q, lower);
    f.json_template = FindJsonTemplate(q);
  } else if (ContainsAny(q, {"顿号分隔", "顿号隔开", "用顿号", "以顿号"})) {
    f.list_separator = "、";
  }
  return f;
}

}  // namespace medeval
