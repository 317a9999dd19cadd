#include "sim/answer_model.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/stable_hash.h"

namespace medeval::sim {
namespace {

std::string FillJson(const std::string& tmpl, bool array, uint64_t h) {
  nlohmann::ordered_json out = nlohmann::ordered_json::object();
  if (!tmpl.empty()) {
    nlohmann::ordered_json t = nlohmann::ordered_json::parse(tmpl, nullptr, false);
    if (t.is_object()) {
      int k = 0;
      for (auto it = t.begin(); it != t.end(); ++it, ++k) {
        out[it.key()] = absl::StrCat("模拟值", k + 1, "-", HashHex(h).substr(0, 6));
      }
    }
  }
  if (out.empty()) out["回答"] = absl::StrCat("模拟回答-", HashHex(h).substr(0, 8));
  if (array) return nlohmann::ordered_json::array({std::move(out)}).dump();
  return out.dump();
}

std::string Letters(const std::vector<char>& letters, const std::string& sep) {
  std::vector<std::string> parts;
  for (char c : letters) parts.emplace_back(1, c);
  return absl::StrJoin(parts, sep);
}

}  // namespace

std::string QuestionKey(absl::string_view question) { return HashHex(StableHash(question)); }

SimAnswer AnswerQuestion(absl::string_view model, absl::string_view question,
                         const AnswerStyle& style) {
  const uint64_t h = StableHashOf({model, question}, style.seed);
  const PromptFormat f = DetectPromptFormat(question);
  SimAnswer out;
  out.violates_format = HashToUnit(StableHashOf({"violate", model, question}, style.seed)) <
                        style.format_violation_rate;
  std::string text;
  if (f.choice != ChoiceKind::kNone) {
    // Pick by option text so shuffled repeats of a question get the same option.
    const std::string stem = QuestionStem(question);
    const bool flip =
        HashToUnit(StableHashOf({"flip", model, question}, style.seed)) < style.flip_rate;
    std::vector<std::pair<uint64_t, char>> scored;
    for (const ChoiceOption& o : f.options) {
      uint64_t s = flip ? StableHashOf({model, question, std::string(1, o.letter)}, style.seed)
                        : StableHashOf({model, stem, o.text}, style.seed);
      scored.emplace_back(s, o.letter);
    }
    std::vector<char> chosen;
    if (f.choice == ChoiceKind::kSingle) {
      chosen.push_back(std::min_element(scored.begin(), scored.end())->second);
    } else {
      for (const auto& [s, letter] : scored) {
        if (s % 5 < 2) chosen.push_back(letter);
      }
      if (chosen.empty()) chosen.push_back(std::min_element(scored.begin(), scored.end())->second);
      std::sort(chosen.begin(), chosen.end());
    }
    if (out.violates_format) {
      text = absl::StrCat(
          "根据题干信息逐项分析，综合考虑各选项，我认为正确答案应该是", Letters(chosen, "、"),
          "。理由如下：该选项与题干描述的临床特征最为吻合，其余选项均存在明显不符之处。");
    } else {
      text = Letters(chosen, f.multi_separator);
      if (f.brackets) text = absl::StrCat("<", text, ">");
    }
  } else if (f.json && !out.violates_format) {
    text = FillJson(f.json_template, f.json_array, h);
  } else if (!f.list_separator.empty() && !out.violates_format) {
    text = absl::StrCat("模拟项", HashHex(h).substr(0, 4), f.list_separator, "模拟项",
                        HashHex(h).substr(4, 4));
  } else {
    text = absl::StrCat("【模拟回答 ", HashHex(h).substr(0, 8),
                        "】根据所给信息，建议结合患者的具体情况进行综合评估，"
                        "必要时完善相关检查并遵医嘱处理。");
  }
  if (style.think || style.reasoning_field) {
    std::string reasoning = absl::StrCat("先梳理题干中的关键信息（", HashHex(h).substr(8, 6),
                                         "），再逐一核对可能的答案。");
    if (style.reasoning_field) {
      out.reasoning_content = reasoning;
    } else {
      text = absl::StrCat("<think>\n", reasoning, "\n</think>\n\n", text);
    }
  }
  out.content = std::move(text);
  return out;
}

}  // namespace medeval::sim
