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

}  // namespace

PromptFormat DetectPromptFormat(absl::string_view q) {
  PromptFormat f;
  f.options = ParseOptions(q);
  if (ContainsAny(q, {"多选", "多项选择", "一个或多个", "不定项", "所有答案", "所有正确"})) {
    f.choice = ChoiceKind::kMulti;
  } else if (ContainsAny(q, {"单选", "单项选择", "选择题", "选项字母", "选出一个", "最佳选项"}) ||
             (f.options.size() >= 2 && ContainsAny(q, {"选项", "选择"}) &&
              !absl::StrContains(absl::AsciiStrToLower(q), "json"))) {
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
  if (absl::StrContains(absl::AsciiStrToLower(q), "json")) {
    f.json = true;
    f.json_template = FindJsonTemplate(q);
  }
  return f;
}

}  // namespace medeval
