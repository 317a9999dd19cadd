#include "audit/format_rules.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "audit/answer_reading.h"
#include "common/prompt_format.h"
#include "common/utf8.h"

namespace medeval {
namespace {

constexpr size_t kMaxListItem = 30;  // code points: a department or term, not a sentence

bool IsLetter(char c) { return c >= 'A' && c <= 'Z'; }

bool ValidLetter(char c, const std::vector<ChoiceOption>& options) {
  if (options.empty()) return c >= 'A' && c <= 'J';
  for (const auto& o : options) {
    if (o.letter == c) return true;
  }
  return false;
}

std::string Range(const std::vector<ChoiceOption>& options) {
  if (options.empty()) return "A-J";
  return absl::StrCat(std::string(1, options.front().letter), "-",
                      std::string(1, options.back().letter));
}

std::string Describe(absl::string_view t) {
  return absl::StrCat(Utf8Length(t), " characters of text");
}

// The start of a bad answer, quoted.
std::string Quote(absl::string_view t) {
  absl::string_view head = Utf8Prefix(t, 60);
  return absl::StrCat("'", head, head.size() < t.size() ? "…'" : "'");
}

std::string Article(absl::string_view type) {
  return absl::StrCat(
      type.empty() || std::string("aeiou").find(type[0]) == std::string::npos ? "a " : "an ", type);
}

std::string CheckLetterSet(absl::string_view inner, const std::vector<ChoiceOption>& options,
                           bool commas) {
  std::vector<char> letters;
  if (commas) {
    for (absl::string_view part : absl::StrSplit(inner, ',')) {
      part = absl::StripAsciiWhitespace(part);
      if (part.size() != 1 || !IsLetter(part[0])) {
        return absl::StrCat("expected letters separated by ',', found ", Quote(part));
      }
      letters.push_back(part[0]);
    }
  } else {
    for (char c : inner) {
      if (c == ',' || c == ' ') {
        return "letters must be written together (e.g. ABC), without separators";
      }
      if (!IsLetter(c)) return "expected option letters only (e.g. ABC)";
      letters.push_back(c);
    }
  }
  if (letters.empty()) return "no letter";
  std::set<char> seen;
  for (char c : letters) {
    if (!ValidLetter(c, options)) {
      return absl::StrCat("'", std::string(1, c), "' is not an option (", Range(options), ")");
    }
    if (!seen.insert(c).second) return absl::StrCat("'", std::string(1, c), "' given twice");
  }
  return "";
}

// The JSON of an answer, allowing one ``` or ```json fence around it.
absl::string_view Unfence(absl::string_view t) {
  if (absl::StartsWith(t, "```") && absl::EndsWith(t, "```") && t.size() >= 6) {
    t.remove_prefix(3);
    t.remove_suffix(3);
    if (absl::StartsWithIgnoreCase(t, "json")) t.remove_prefix(4);
    t = absl::StripAsciiWhitespace(t);
  }
  return t;
}

// "label：" (or ":") at the start of a line, after list numbers and markdown
// marks ("1. **诊断**：…").
bool LineHasLabel(absl::string_view line, const std::string& label) {
  std::string l;
  for (char c : line) {
    if (c != '*' && c != '#') l.push_back(c);
  }
  absl::string_view v = TrimSpace(l);
  while (!v.empty() && (absl::ascii_isdigit(v[0]) || v[0] == '.' || v[0] == '-' || v[0] == ' ')) {
    v.remove_prefix(1);
  }
  if (absl::StartsWith(v, "、")) v.remove_prefix(3);
  v = TrimSpace(v);
  if (!absl::StartsWith(v, label)) return false;
  v = TrimSpace(v.substr(label.size()));
  return absl::StartsWith(v, "：") || absl::StartsWith(v, ":");
}

std::string CheckFields(const FormatRule& rule, absl::string_view t) {
  absl::string_view body = Unfence(t);
  auto j = nlohmann::json::parse(body.begin(), body.end(), nullptr, false);
  if (!j.is_discarded() && j.is_object()) {
    for (const std::string& k : rule.labels) {
      if (!j.contains(k)) return absl::StrCat("a JSON object without \"", k, "\"");
    }
    return "";
  }
  std::vector<absl::string_view> lines = absl::StrSplit(t, '\n');
  size_t next = 0;
  for (const std::string& label : rule.labels) {
    while (next < lines.size() && !LineHasLabel(lines[next], label)) ++next;
    if (next == lines.size()) {
      return absl::StrCat("no line '", label, "：' (in the order ",
                          absl::StrJoin(rule.labels, "：, "), "：)");
    }
    ++next;
  }
  return "";
}

}  // namespace

const char* AnswerFormatName(AnswerFormat f) {
  switch (f) {
    case AnswerFormat::kLetter:
      return "one letter";
    case AnswerFormat::kLetterInBrackets:
      return "one letter in <>";
    case AnswerFormat::kLetters:
      return "letters together (ABC)";
    case AnswerFormat::kLettersComma:
      return "letters separated by ','";
    case AnswerFormat::kLettersInBracketsComma:
      return "letters in <> separated by ','";
    case AnswerFormat::kJsonObject:
      return "JSON object";
    case AnswerFormat::kJsonArray:
      return "JSON list";
    case AnswerFormat::kJsonObjectOrList:
      return "JSON list or object";
    case AnswerFormat::kFields:
      return "labelled fields";
    case AnswerFormat::kList:
      return "separated list";
    case AnswerFormat::kFreeText:
      return "free text";
  }
  return "?";
}

const std::vector<FormatRule>& FormatRules() {
  static const auto* rules = new std::vector<FormatRule>{
      {{Track::kV4Llm},
       {"MedSafety", "MedEthics", "MedRxCheck_SCQ"},
       AnswerFormat::kLetter,
       "",
       "single choice: the prompt asks for just the option letter (示例输出：A)"},
      {{Track::kV4Llm},
       {"MedExam"},
       AnswerFormat::kLetterInBrackets,
       "",
       "single choice: the prompt asks for the option letter inside <> (填写到<>中)"},
      {{Track::kV4Llm},
       {"MedRxCheck_MSQ"},
       AnswerFormat::kLetters,
       "",
       "multiple choice: all correct letters together (示例输出：ABC)"},
      {{Track::kV4Llm},
       {"DDx-advanced"},
       AnswerFormat::kLettersComma,
       "",
       "one or more letters separated by ',' (多个答案之间使用','分隔)"},
      {{Track::kV4Llm, Track::kV4Vlm},
       {"SMDoc", "MedInsureCalc", "MedPrimary", "MedTreat", "MedOCR"},
       AnswerFormat::kJsonObject,
       "",
       "the prompt requires its answer as a JSON object with given keys"},
      {{Track::kV4Llm},
       {"MedReportQC"},
       AnswerFormat::kJsonObjectOrList,
       "",
       "the task header asks for a JSON object {\"错误类型\": \"修改建议\"} (空dict), but every "
       "question body asks for a JSON list of {\"错误类型\", \"修改建议\"} objects (空列表 [] "
       "when there is no error) and shows one: the prompt gives both, so both comply",
       {},
       {"错误类型", "修改建议"}},
      {{Track::kV4Llm},
       {"CMB-Clin-extended"},
       AnswerFormat::kFields,
       "",
       "the prompt asks to keep strictly to its example: lines 诊断：, 诊断依据：, "
       "需立即完善的检查： (输出格式应严格保持如下示例格式)",
       {"诊断", "诊断依据", "需立即完善的检查"}},
      {{Track::kV4Llm},
       {"MedDiag"},
       AnswerFormat::kFields,
       "",
       "the prompt asks for lines 初步诊断：, 诊断依据： (请严格按照此格式输出)",
       {"初步诊断", "诊断依据"}},
      {{Track::kV4Llm},
       {"MedOutcome"},
       AnswerFormat::kFields,
       "",
       "the prompt's example answer is {\"预测结局\": …, \"理由\": …} inside a quoted "
       "example that is not JSON itself: a JSON object with those keys and lines 预测结局：, "
       "理由： both comply",
       {"预测结局", "理由"}},
      {{Track::kV4Llm, Track::kV4Vlm},
       {"MedDiffer", "MedDetect"},
       AnswerFormat::kJsonArray,
       "",
       "the prompt requires a JSON list (one object per diagnosis or lesion)"},
      {{Track::kV4Llm},
       {"MedHG"},
       AnswerFormat::kList,
       "、",
       "departments separated by 、 (多个科室间请用顿号分隔)"},
      {{Track::kV4Vlm},
       {"MedQC"},
       AnswerFormat::kList,
       "|",
       "problem types separated by '|' (问题之间用'|'分隔)"},
      {{Track::kLegacyLlm},
       {"Med-Exam", "DrugCA", "MedSafety"},
       AnswerFormat::kLetterInBrackets,
       "",
       "single choice: the option letter inside <> (答案放在<>里)"},
      {{Track::kLegacyLlm},
       {"DDx-basic", "DDx-advanced"},
       AnswerFormat::kLettersInBracketsComma,
       "",
       "one or more letters in <> separated by ',' (填写到<>中，多个答案之间使用\",\"分隔)"},
      {{Track::kLegacyLlm},
       {"MedHG"},
       AnswerFormat::kList,
       "|",
       "departments separated by '|' (科室之间用\"|\"分隔)"},
      {{Track::kLegacyLlm},
       {"CHIP-CDN"},
       AnswerFormat::kList,
       "##",
       "standard terms separated by '##' (as in the prompt's example)"},
  };
  return *rules;
}

FormatRule RuleFor(Track track, const std::string& dataset, absl::string_view sample) {
  for (const FormatRule& r : FormatRules()) {
    if (std::find(r.tracks.begin(), r.tracks.end(), track) != r.tracks.end() &&
        std::find(r.datasets.begin(), r.datasets.end(), dataset) != r.datasets.end()) {
      return r;
    }
  }
  FormatRule r;
  r.tracks = {track};
  r.datasets = {dataset};
  const PromptFormat f = DetectPromptFormat(sample);
  if (f.choice == ChoiceKind::kSingle) {
    r.format = f.brackets ? AnswerFormat::kLetterInBrackets : AnswerFormat::kLetter;
  } else if (f.choice == ChoiceKind::kMulti) {
    r.format = f.brackets                  ? AnswerFormat::kLettersInBracketsComma
               : f.multi_separator.empty() ? AnswerFormat::kLetters
                                           : AnswerFormat::kLettersComma;
  } else if (f.json) {
    r.format = AnswerFormat::kJsonObject;
  } else {
    r.format = AnswerFormat::kFreeText;
    r.why = "no answer format is prescribed";
    return r;
  }
  r.why = "read from the prompt (the dataset is not in the rules table)";
  return r;
}

std::string CheckAnswer(const FormatRule& rule, absl::string_view answer,
                        const std::vector<ChoiceOption>& options) {
  if (absl::StartsWith(absl::StripLeadingAsciiWhitespace(answer), "\xEF\xBB\xBF")) {
    return "starts with a byte order mark (U+FEFF)";
  }
  const absl::string_view t = TrimSpace(answer);
  if (t.empty()) return "empty answer";
  switch (rule.format) {
    case AnswerFormat::kLetter:
      if (t.size() == 1 && IsLetter(t[0])) {
        return ValidLetter(t[0], options)
                   ? ""
                   : absl::StrCat("'", t, "' is not an option (", Range(options), ")");
      }
      if (t.size() == 1 && t[0] >= 'a' && t[0] <= 'z') return "lowercase letter (case matters)";
      if (absl::StartsWith(t, "<")) return "letter in <>, but the prompt asks for the bare letter";
      return absl::StrCat("expected one option letter, found ", Describe(t));
    case AnswerFormat::kLetterInBrackets: {
      if (t.size() == 3 && t[0] == '<' && t[2] == '>' && IsLetter(t[1])) {
        return ValidLetter(t[1], options)
                   ? ""
                   : absl::StrCat("'", t.substr(1, 1), "' is not an option (", Range(options), ")");
      }
      if (t == "<>") return "nothing inside <>";
      if (absl::StartsWith(t, "<") && absl::EndsWith(t, ">")) {
        absl::string_view inner = t.substr(1, t.size() - 2);
        if (absl::StripAsciiWhitespace(inner).size() == 1) return "spaces inside <>";
        return "more than one letter inside <> (single choice)";
      }
      if (t.size() == 1 && IsLetter(t[0])) return "the letter is not inside <>";
      return absl::StrCat("expected one letter inside <>, found ", Describe(t));
    }
    case AnswerFormat::kLetters:
      if (absl::StartsWith(t, "<")) return "letters in <>, but the prompt asks for them bare (ABC)";
      return CheckLetterSet(t, options, /*commas=*/false);
    case AnswerFormat::kLettersComma:
      if (absl::StartsWith(t, "<")) return "letters in <>, but the prompt asks for them bare";
      return CheckLetterSet(t, options, /*commas=*/true);
    case AnswerFormat::kLettersInBracketsComma:
      if (!absl::StartsWith(t, "<") || !absl::EndsWith(t, ">") || t.size() < 3) {
        return absl::StrCat("expected letters inside <> (e.g. <A, C>), found ", Describe(t));
      }
      return CheckLetterSet(t.substr(1, t.size() - 2), options, /*commas=*/true);
    case AnswerFormat::kJsonObject:
    case AnswerFormat::kJsonArray: {
      absl::string_view body = Unfence(t);
      auto j = nlohmann::json::parse(body.begin(), body.end(), nullptr, false);
      if (j.is_discarded()) return absl::StrCat("not JSON: ", Describe(t));
      if (rule.format == AnswerFormat::kJsonObject && !j.is_object()) {
        return absl::StrCat("JSON, but ", Article(j.type_name()), " where an object is asked for");
      }
      if (rule.format == AnswerFormat::kJsonArray && !j.is_array()) {
        return absl::StrCat("JSON, but ", Article(j.type_name()), " where a list is asked for");
      }
      return "";
    }
    case AnswerFormat::kJsonObjectOrList: {
      absl::string_view body = Unfence(t);
      auto j = nlohmann::json::parse(body.begin(), body.end(), nullptr, false);
      if (j.is_discarded()) return absl::StrCat("not JSON: ", Describe(t));
      if (j.is_object()) return "";
      if (!j.is_array()) {
        return absl::StrCat("JSON, but ", Article(j.type_name()),
                            " where a list or an object is asked for");
      }
      for (size_t i = 0; i < j.size(); ++i) {
        if (!j[i].is_object()) return absl::StrCat("item ", i + 1, " of the list is not an object");
        for (const std::string& k : rule.item_keys) {
          if (!j[i].contains(k)) return absl::StrCat("item ", i + 1, " has no \"", k, "\"");
        }
      }
      return "";
    }
    case AnswerFormat::kFields:
      return CheckFields(rule, t);
    case AnswerFormat::kList: {
      if (t.find('\n') != absl::string_view::npos) return "a list on one line was asked for";
      for (absl::string_view item : absl::StrSplit(t, rule.separator)) {
        item = absl::StripAsciiWhitespace(item);
        if (item.empty()) return absl::StrCat("empty item between '", rule.separator, "'");
        for (absl::string_view other : {"，", ",", "；", ";", "。", "、", "|", "##"}) {
          if (other != rule.separator && absl::StrContains(item, other)) {
            return absl::StrCat("items separated by '", other, "' instead of '", rule.separator,
                                "', or prose");
          }
        }
        if (Utf8Length(item) > kMaxListItem) {
          return absl::StrCat("an item of ", Utf8Length(item),
                              " characters: prose instead of a list");
        }
      }
      return "";
    }
    case AnswerFormat::kFreeText:
      return "";
  }
  return "";
}

bool HasShuffledRepeats(Track track, const std::string& dataset) {
  if (track == Track::kLegacyLlm) {
    return dataset == "Med-Exam" || dataset == "DrugCA" || dataset == "MedSafety";
  }
  if (track != Track::kV4Llm) return false;
  return dataset == "MedExam" || dataset == "MedSafety" || dataset == "MedEthics" ||
         dataset == "MedRxCheck_SCQ";
}

}  // namespace medeval
