// Reading real answers the way a reader would, apart from the strict format
// check (format_rules.h): what option a model chose, whether the text is
// chain-of-thought that leaked without think tags, and whether it was cut off.
//
// The rules are text heuristics, documented in the README ("Audit rules"):
//
//   chosen option  the final well-formed answer wins: the whole answer in the
//                  asked form, else the last line in that form ("…\n\n<C>",
//                  "答：<C>", "答案：C"), else every <X> in the text naming
//                  one letter, else one distinct letter standing alone in
//                  the prose (letters that start a word such as "B超" do not
//                  count). Nothing is read from an answer that was cut off.
//   untagged       reasoning without <think> tags: it opens like a model
//   reasoning      thinking aloud ("首先，", "好的，", "嗯，", "Okay, let me")
//                  and talks to itself (two distinct markers such as "用户",
//                  "让我", "我需要", "let me", "the user", "wait"), or holds
//                  four such markers wherever it starts.
//   cut off        records.jsonl's finish_reason ("length") or truncated flag
//                  when there is a record; otherwise the text: an unclosed
//                  <think> or ``` fence, JSON whose brackets never close, an
//                  answer of 100+ characters ending in a comma-like mark, or
//                  one whose last line is a 60+ character sentence with
//                  commas and no final punctuation.
//
// Thread-safety: pure functions.
#ifndef MEDEVAL_AUDIT_ANSWER_READING_H_
#define MEDEVAL_AUDIT_ANSWER_READING_H_

#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "audit/format_rules.h"
#include "common/choice.h"

namespace medeval {

// `s` without leading and trailing whitespace of any kind (ASCII, U+3000,
// U+00A0, U+2000-U+200B, U+FEFF, ...).
absl::string_view TrimSpace(absl::string_view s);

// The text after a closing </think> (the answer of a reasoning model whose
// think block was left in), else `s`.
absl::string_view AfterThinking(absl::string_view s);

// Empty when the answer does not look like leaked reasoning; else why.
std::string UntaggedReasoning(absl::string_view answer);

// Empty when the text does not look cut off; else why.
std::string CutOffByText(absl::string_view answer);

// What an answer chose: option letters in order ("C", "ACD"), or empty with
// `why` it cannot be read.
struct Reading {
  std::string letters;
  std::string why;
};

// `rule` tells single from multiple choice and the asked form.
Reading ReadChoice(const FormatRule& rule, absl::string_view answer,
                   const std::vector<ChoiceOption>& options);

// True for the formats that answer with option letters.
bool IsChoiceFormat(AnswerFormat f);
bool IsMultiChoiceFormat(AnswerFormat f);

}  // namespace medeval

#endif  // MEDEVAL_AUDIT_ANSWER_READING_H_
