#include "audit/compare_browser.h"

#include <algorithm>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "audit/answer_reading.h"
#include "common/utf8.h"

namespace medeval {
namespace {

using json = nlohmann::json;

// Bytes per answer's reasoning in the report; all of it is in records.jsonl.
constexpr size_t kMaxReasoning = 4000;

// What a model's shuffles of one id chose: "甲 ×4 · 乙 ×1".
std::string GroupSummary(const std::vector<const AnsweredLine*>& lines) {
  std::map<std::string, int> count;
  int unreadable = 0;
  for (const AnsweredLine* a : lines) {
    if (a->choice.empty()) {
      ++unreadable;
    } else {
      ++count[a->choice];
    }
  }
  std::vector<std::string> parts;
  for (const auto& [text, n] : count) parts.push_back(absl::StrCat(text, " ×", n));
  if (unreadable > 0) parts.push_back(absl::StrCat("unreadable ×", unreadable));
  return absl::StrJoin(parts, " · ");
}

}  // namespace

SharedParts FindSharedParts(const std::vector<absl::string_view>& texts) {
  SharedParts p;
  if (texts.size() < 2) return p;
  size_t prefix = texts[0].size(), suffix = texts[0].size(), shortest = texts[0].size();
  for (absl::string_view t : texts) {
    shortest = std::min(shortest, t.size());
    size_t i = 0;
    while (i < prefix && i < t.size() && t[i] == texts[0][i]) ++i;
    prefix = i;
    size_t j = 0;
    while (j < suffix && j < t.size() && t[t.size() - 1 - j] == texts[0][texts[0].size() - 1 - j]) {
      ++j;
    }
    suffix = j;
  }
  // Whole lines only: the prefix ends after a newline, the suffix starts at one.
  const absl::string_view first = texts[0];
  const size_t nl = first.substr(0, prefix).rfind('\n');
  p.prefix = nl == absl::string_view::npos ? 0 : nl + 1;
  suffix = std::min(suffix, shortest - p.prefix);
  const size_t start = first.size() - suffix;
  const size_t at = first.find('\n', start);
  p.suffix = at == absl::string_view::npos ? 0 : first.size() - at;
  return p;
}

json BrowserData(const std::vector<AuditReport>& reports, const ConsensusReport& consensus) {
  json data;
  data["models"] = json::array();
  for (const auto& r : reports) data["models"].push_back(r.label);
  data["consensus_models"] = consensus.computed ? consensus.models : 0;
  std::map<std::string, std::map<uint32_t, std::string>> consensus_of;
  for (size_t d = 0; d < consensus.datasets.size(); ++d) {
    for (const auto& [line, text] : consensus.consensus_text[d]) {
      consensus_of[consensus.datasets[d].dataset][line] = text;
    }
  }
  std::map<std::string, std::vector<const DatasetAudit*>> by_dataset;  // one slot per model
  for (size_t m = 0; m < reports.size(); ++m) {
    for (const DatasetAudit& d : reports[m].datasets) {
      auto& slots = by_dataset[d.dataset];
      slots.resize(reports.size(), nullptr);
      slots[m] = &d;
    }
  }
  data["datasets"] = json::array();
  for (auto& [name, slots] : by_dataset) {
    slots.resize(reports.size(), nullptr);
    // Questions by line, from whichever model has them; each model's lines
    // by line and by shuffled group.
    std::map<uint32_t, const AnsweredLine*> questions;
    const DatasetAudit* any = nullptr;
    std::vector<std::map<uint32_t, const AnsweredLine*>> per_model(reports.size());
    std::vector<std::map<std::string, std::vector<const AnsweredLine*>>> groups(reports.size());
    std::map<std::string, uint32_t> group_start;
    for (size_t m = 0; m < slots.size(); ++m) {
      if (slots[m] == nullptr) continue;
      if (any == nullptr) any = slots[m];
      for (const AnsweredLine& a : slots[m]->lines) {
        per_model[m][a.line] = &a;
        if (!questions.count(a.line) || questions[a.line]->question.empty()) questions[a.line] = &a;
        if (!a.group.empty()) {
          groups[m][a.group].push_back(&a);
          auto [it, added] = group_start.emplace(a.group, a.line);
          if (!added) it->second = std::min(it->second, a.line);
        }
      }
    }
    std::vector<absl::string_view> texts;
    for (const auto& [line, q] : questions) {
      if (!q->question.empty()) texts.push_back(q->question);
    }
    const SharedParts shared = FindSharedParts(texts);
    json ds;
    ds["name"] = name;
    ds["format"] = AnswerFormatName(any->rule.format);
    ds["why"] = any->rule.why;
    ds["choice"] = IsChoiceFormat(any->rule.format);
    ds["pre"] = texts.empty() ? "" : std::string(texts[0].substr(0, shared.prefix));
    ds["suf"] = texts.empty() ? "" : std::string(texts[0].substr(texts[0].size() - shared.suffix));
    const auto& cons = consensus_of[name];
    json group_notes = json::object();  // "id 7" -> per model: what its shuffles chose
    json qs = json::array();
    for (const auto& [line, q] : questions) {
      json item;
      item["l"] = line;
      const absl::string_view t = q->question;
      item["t"] =
          t.size() >= shared.prefix + shared.suffix
              ? std::string(t.substr(shared.prefix, t.size() - shared.prefix - shared.suffix))
              : std::string(t);
      if (q->other.is_object() && q->other.contains("id")) item["id"] = q->other["id"].dump();
      if (!q->group.empty()) item["g"] = 1;
      const uint32_t key = q->group.empty() ? line : group_start[q->group];
      if (auto c = cons.find(key); c != cons.end()) item["c"] = c->second;
      json answers = json::array();
      for (size_t m = 0; m < reports.size(); ++m) {
        auto it = per_model[m].find(line);
        if (it == per_model[m].end()) {
          answers.push_back(
              json::array({nullptr, "", kFlagMissing, "", "",
                           slots[m] == nullptr ? "the model has no file for this dataset"
                                               : "no line for this question"}));
          continue;
        }
        const AnsweredLine& a = *it->second;
        const bool choice_ds = IsChoiceFormat(any->rule.format);
        const bool unreadable = choice_ds && a.answer.has_value() && a.letters.empty();
        int flags = (a.present ? 0 : kFlagMissing) | (a.leak ? kFlagLeak : 0) |
                    (a.truncated ? kFlagTruncated : 0) |
                    (!a.group.empty() && !a.group_consistent ? kFlagInconsistent : 0) |
                    (a.untagged_reasoning ? kFlagUntagged : 0) | (unreadable ? kFlagUnreadable : 0);
        std::string note = a.problem;
        if (unreadable) note = absl::StrCat("no option read: ", a.choice_why);
        // What the shuffles chose, once per id and model (not on every line).
        if ((a.group_state == "inconsistent" || a.group_state == "unreadable") &&
            !group_notes.contains(a.group)) {
          json per_model_notes = json::array();
          for (size_t k = 0; k < reports.size(); ++k) {
            per_model_notes.push_back(groups[k].count(a.group) ? GroupSummary(groups[k][a.group])
                                                               : "");
          }
          group_notes[a.group] = std::move(per_model_notes);
        }
        json entry =
            json::array({a.answer.has_value() ? json(*a.answer) : json(nullptr), a.format_problem,
                         flags, std::string(Utf8Prefix(a.reasoning, kMaxReasoning)),
                         a.letters.empty() ? "" : absl::StrCat(a.letters, " · ", a.choice), note});
        // Trailing empty fields are left out: the reader treats them as "".
        while (entry.size() > 3 && entry.back() == "") entry.erase(entry.size() - 1);
        answers.push_back(std::move(entry));
      }
      item["a"] = std::move(answers);
      qs.push_back(std::move(item));
    }
    ds["q"] = std::move(qs);
    if (!group_notes.empty()) ds["gs"] = std::move(group_notes);
    data["datasets"].push_back(std::move(ds));
  }
  return data;
}

}  // namespace medeval
