#include "audit/answer_reading.h"

#include <algorithm>
#include <cstring>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/utf8.h"

namespace medeval {
namespace {

// The code point at `pos` and its length in bytes (1 for a stray byte).
std::pair<char32_t, size_t> Decode(absl::string_view s, size_t pos) {
  const auto b = [&](size_t i) { return static_cast<unsigned char>(s[i]); };
  const unsigned char c = b(pos);
  size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 1;
  if (pos + n > s.size()) return {c, 1};
  if (n == 1) return {c, 1};
  char32_t cp = c & (0x7f >> n);
  for (size_t i = 1; i < n; ++i) cp = (cp << 6) | (b(pos + i) & 0x3f);
  return {cp, n};
}

bool IsSpace(char32_t c) {
  return (c >= 0x09 && c <= 0x0d) || c == 0x20 || c == 0x85 || c == 0xa0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200b) || c == 0x2028 || c == 0x2029 || c == 0x202f || c == 0x205f ||
         c == 0x3000 || c == 0xfeff;
}

bool IsIdeograph(char32_t c) {
  return (c >= 0x4e00 && c <= 0x9fff) || (c >= 0x3400 && c <= 0x4dbf);
}

// The last code point of `s` (0 when empty).
char32_t LastCodePoint(absl::string_view s) {
  if (s.empty()) return 0;
  size_t i = s.size() - 1;
  while (i > 0 && (static_cast<unsigned char>(s[i]) & 0xc0) == 0x80) --i;
  return Decode(s, i).first;
}

bool IsUpper(char c) { return c >= 'A' && c <= 'Z'; }

bool ValidLetter(char c, const std::vector<ChoiceOption>& options) {
  if (options.empty()) return IsUpper(c);
  for (const auto& o : options) {
    if (o.letter == c) return true;
  }
  return false;
}

absl::string_view LastLine(absl::string_view t) {
  size_t nl = t.rfind('\n');
  return nl == absl::string_view::npos ? t : TrimSpace(t.substr(nl + 1));
}

// Markdown emphasis and heading marks around a final answer ("**答案：C**").
std::string Undecorate(absl::string_view line) {
  std::string out;
  for (char c : line) {
    if (c != '*' && c != '#' && c != '`') out.push_back(c);
  }
  return std::string(TrimSpace(out));
}

// "答：", "答案是", "最终答案：", "Answer:", ... at the start of a final line.
absl::string_view StripAnswerLead(absl::string_view s) {
  static const char* const kLeads[] = {"最终答案", "正确答案", "参考答案", "答案",
                                       "答",       "故选",     "应选",     "选择",
                                       "选",       "Answer",   "answer",   "Final answer"};
  for (const char* lead : kLeads) {
    if (absl::StartsWith(s, lead)) {
      s.remove_prefix(strlen(lead));
      for (absl::string_view sep : {"是", "为", "：", ":", " "}) {
        if (absl::StartsWith(s, sep)) s.remove_prefix(sep.size());
      }
      return TrimSpace(s);
    }
  }
  return s;
}

// Letters of a bare final answer: "C", "<C>", "(C)", "C.", "C。", "A,C",
// "<A, C>", "ACD". Empty when the text is anything else.
std::string BareLetters(absl::string_view s, const std::vector<ChoiceOption>& options, bool multi) {
  std::string letters;
  for (size_t i = 0; i < s.size();) {
    auto [cp, n] = Decode(s, i);
    if (IsUpper(static_cast<char>(cp)) && cp < 0x80) {
      if (!ValidLetter(static_cast<char>(cp), options)) return "";
      letters.push_back(static_cast<char>(cp));
    } else if (!(cp == '<' || cp == '>' || cp == '(' || cp == ')' || cp == 0xff08 || cp == 0xff09 ||
                 cp == '.' || cp == 0x3002 || cp == ',' || cp == 0xff0c || cp == 0x3001 ||
                 IsSpace(cp))) {
      return "";
    }
    i += n;
  }
  if (letters.empty() || (!multi && letters.size() != 1)) return "";
  std::set<char> distinct(letters.begin(), letters.end());
  if (distinct.size() != letters.size()) return "";
  std::sort(letters.begin(), letters.end());
  return letters;
}

// Letters named as "<X>" anywhere; empty unless they all agree.
std::string BracketedLetter(absl::string_view t, const std::vector<ChoiceOption>& options) {
  std::set<char> found;
  for (size_t i = 0; i + 2 < t.size(); ++i) {
    if (t[i] == '<' && t[i + 2] == '>' && IsUpper(t[i + 1]) && ValidLetter(t[i + 1], options)) {
      found.insert(t[i + 1]);
    }
  }
  return found.size() == 1 ? std::string(1, *found.begin()) : "";
}

// Option letters standing alone in prose: not inside an ASCII word, and not
// the start of a word such as "B超", "X线", "A型", "C反应蛋白".
std::set<char> ProseLetters(absl::string_view t, const std::vector<ChoiceOption>& options) {
  std::set<char> found;
  for (size_t i = 0; i < t.size(); ++i) {
    const char c = t[i];
    if (!IsUpper(c) || !ValidLetter(c, options)) continue;
    const bool left = i == 0 || !absl::ascii_isalnum(static_cast<unsigned char>(t[i - 1]));
    bool right = i + 1 == t.size() || !absl::ascii_isalnum(static_cast<unsigned char>(t[i + 1]));
    if (right && i + 1 < t.size()) {
      auto [next, n] = Decode(t, i + 1);
      (void)n;
      for (char32_t w : {U'超', U'线', U'光', U'型', U'族', U'类', U'反', U'二'}) {
        if (next == w) right = false;
      }
    }
    if (left && right) found.insert(c);
  }
  return found;
}

size_t CountOf(absl::string_view t, absl::string_view what) {
  size_t n = 0;
  for (size_t p = t.find(what); p != absl::string_view::npos; p = t.find(what, p + what.size())) {
    ++n;
  }
  return n;
}

}  // namespace

absl::string_view TrimSpace(absl::string_view s) {
  while (!s.empty()) {
    auto [cp, n] = Decode(s, 0);
    if (!IsSpace(cp)) break;
    s.remove_prefix(n);
  }
  while (!s.empty()) {
    size_t i = s.size() - 1;
    while (i > 0 && (static_cast<unsigned char>(s[i]) & 0xc0) == 0x80) --i;
    if (!IsSpace(Decode(s, i).first)) break;
    s.remove_suffix(s.size() - i);
  }
  return s;
}

absl::string_view AfterThinking(absl::string_view s) {
  size_t close = s.rfind("</think>");
  return close == absl::string_view::npos ? s : TrimSpace(s.substr(close + 8));
}

std::string UntaggedReasoning(absl::string_view answer) {
  const absl::string_view t = TrimSpace(answer);
  if (absl::StrContains(t, "<think>") || absl::StrContains(t, "</think>")) return "";  // a leak
  static const char* const kOpeners[] = {
      "首先，", "首先,", "好的，",   "好的,", "嗯，",   "嗯,",       "嗯……",         "好，",
      "Okay,",  "OK,",   "Alright,", "Hmm,",  "Let me", "Let's see", "So, the user", "我现在需要"};
  bool opener = false;
  for (const char* o : kOpeners) opener = opener || absl::StartsWith(t, o);
  // First-person talk about the task, which an answer addressed to a patient
  // or an examiner does not contain.
  static const char* const kSelfTalk[] = {"用户",     "让我",     "我需要", "我得",      "我应该",
                                          "我先",     "我要",     "我记得", "再想想",    "等等，",
                                          "题目要求", "the user", "let me", "i need to", "wait,",
                                          "i should", "i recall"};
  const std::string head = absl::AsciiStrToLower(Utf8Prefix(t, 6000));
  std::vector<std::string> seen;
  for (const char* m : kSelfTalk) {
    if (absl::StrContains(head, m)) seen.push_back(m);
  }
  if ((opener && seen.size() >= 2) || seen.size() >= 4) {
    return absl::StrCat(Utf8Length(t), " characters of reasoning without think tags (",
                        absl::StrJoin(seen, ", "), ")");
  }
  return "";
}

std::string CutOffByText(absl::string_view answer) {
  const absl::string_view t = TrimSpace(answer);
  if (t.empty()) return "";
  if (absl::StrContains(t, "<think>") && !absl::StrContains(t, "</think>")) {
    return "<think> is never closed";
  }
  const absl::string_view body = AfterThinking(t);
  if (CountOf(body, "```") % 2 == 1) return "a ``` code block is never closed";
  if (absl::StartsWith(body, "{") || absl::StartsWith(body, "[") ||
      absl::StartsWith(body, "```json")) {
    int depth = 0;
    bool in_string = false;
    for (size_t i = 0; i < body.size(); ++i) {
      const char c = body[i];
      if (in_string) {
        if (c == '\\') ++i;
        if (c == '"') in_string = false;
      } else if (c == '"') {
        in_string = true;
      } else if (c == '{' || c == '[') {
        ++depth;
      } else if (c == '}' || c == ']') {
        --depth;
      }
    }
    if (depth > 0 || in_string) return "JSON that never closes";
  }
  const size_t chars = Utf8Length(body);
  const char32_t last = LastCodePoint(body);
  static const char32_t kContinuing[] = {0xff0c, 0x3001, 0xff1b, 0xff1a, ',',    ';', ':',
                                         '(',    0xff08, 0x201c, 0x2018, 0x300a, '-'};
  if (chars >= 100 &&
      std::find(std::begin(kContinuing), std::end(kContinuing), last) != std::end(kContinuing)) {
    return "ends mid-sentence (on a comma-like mark)";
  }
  const absl::string_view line = LastLine(body);
  if (chars >= 100 && Utf8Length(line) >= 60 &&
      (IsIdeograph(last) ||
       (last < 0x80 && absl::ascii_isalpha(static_cast<unsigned char>(last)))) &&
      (absl::StrContains(line, "，") || absl::StrContains(line, ", "))) {
    return "ends mid-sentence (a long last sentence without final punctuation)";
  }
  return "";
}

bool IsChoiceFormat(AnswerFormat f) {
  return f == AnswerFormat::kLetter || f == AnswerFormat::kLetterInBrackets ||
         IsMultiChoiceFormat(f);
}

bool IsMultiChoiceFormat(AnswerFormat f) {
  return f == AnswerFormat::kLetters || f == AnswerFormat::kLettersComma ||
         f == AnswerFormat::kLettersInBracketsComma;
}

Reading ReadChoice(const FormatRule& rule, absl::string_view answer,
                   const std::vector<ChoiceOption>& options) {
  const bool multi = IsMultiChoiceFormat(rule.format);
  absl::string_view t = TrimSpace(answer);
  if (t.empty()) return {"", "no answer"};
  if (absl::StrContains(t, "<think>") && !absl::StrContains(t, "</think>")) {
    return {"", "the reasoning was cut off before an answer"};
  }
  t = AfterThinking(t);
  if (std::string l = BareLetters(t, options, multi); !l.empty()) return {l, ""};
  if (std::string l = BareLetters(StripAnswerLead(Undecorate(LastLine(t))), options, multi);
      !l.empty()) {
    return {l, ""};
  }
  if (!multi) {
    if (std::string l = BracketedLetter(t, options); !l.empty()) return {l, ""};
    std::set<char> prose = ProseLetters(t, options);
    if (prose.size() == 1) return {std::string(1, *prose.begin()), ""};
    if (prose.size() > 1) {
      std::vector<std::string> names;
      for (char c : prose) names.push_back(std::string(1, c));
      return {"", absl::StrCat("names several options (", absl::StrJoin(names, ", "),
                               ") and no final answer")};
    }
  }
  return {"", "names no option"};
}

}  // namespace medeval
