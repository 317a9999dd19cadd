#include "audit/auditor.h"

#include <algorithm>
#include <map>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "audit/answer_reading.h"
#include "common/choice.h"
#include "common/file_util.h"
#include "common/utf8.h"

namespace medeval {
namespace {

using ojson = nlohmann::ordered_json;

// A non-blank line of an answer file, parsed or not.
struct Entry {
  uint32_t line;
  bool ok = false;
  std::string problem;  // when !ok
  ojson json;
};

std::vector<Entry> ReadEntries(absl::string_view contents, int64_t* lines_read) {
  std::vector<Entry> out;
  std::vector<absl::string_view> lines = SplitLines(contents);
  *lines_read = 0;
  for (size_t i = 0; i < lines.size(); ++i) {
    absl::string_view l = lines[i];
    if (IsBlankLine(l)) continue;
    ++*lines_read;
    Entry e;
    e.line = static_cast<uint32_t>(i + 1);
    if (absl::StartsWith(l, "<<<<<<<") || absl::StartsWith(l, "=======") ||
        absl::StartsWith(l, ">>>>>>>")) {
      e.problem = "git conflict marker";
    } else if (size_t bad = FindInvalidUtf8(l); bad != absl::string_view::npos) {
      e.problem = absl::StrCat("invalid UTF-8 at byte ", bad + 1);
    } else {
      e.json = ojson::parse(l.begin(), l.end(), nullptr, false);
      if (e.json.is_discarded()) {
        e.problem =
            i + 1 == lines.size() ? "invalid JSON (the file looks cut short)" : "invalid JSON";
      } else if (!e.json.is_object()) {
        e.problem = "not a JSON object";
      } else {
        e.ok = true;
      }
    }
    out.push_back(std::move(e));
  }
  return out;
}

// The input's question lines (line number, question, other).
struct RefLine {
  uint32_t line;
  std::string question;
  ojson other;
};

std::vector<RefLine> ReadReference(const Suite& suite, const Dataset& ds) {
  std::vector<RefLine> out;
  auto text = ReadFile(JoinPath(suite.root, ds.file.input_path));
  if (!text.ok()) return out;
  std::vector<absl::string_view> lines = SplitLines(*text);
  for (size_t i = 0; i < ds.size(); ++i) {
    uint32_t n = ds.line(i);
    absl::string_view l = lines[n - 1];
    ojson j = ojson::parse(l.begin(), l.end(), nullptr, false);
    out.push_back({n, std::string(ds.question(i)), j.is_object() ? j["other"] : ojson()});
  }
  return out;
}

void AddProblem(DatasetAudit* d, uint32_t line, const char* kind, std::string detail) {
  d->problems.push_back({line, kind, std::move(detail)});
}

// Cut off by what the server said, when the run recorded it: records.jsonl's
// finish_reason, truncated flag or flags list. nullopt: no record says.
std::optional<bool> CutOffByRecord(const nlohmann::json& r) {
  std::optional<bool> out;
  if (r.contains("finish_reason") && r["finish_reason"].is_string()) {
    out = r["finish_reason"] == "length";
  }
  if (r.contains("truncated") && r["truncated"].is_boolean()) {
    out = out.value_or(false) || r["truncated"].get<bool>();
  }
  if (r.contains("flags") && r["flags"].is_array()) {
    for (const auto& f : r["flags"]) {
      if (f == "truncated") out = true;
    }
  }
  return out;
}

// The option(s) an answer chose, by letter and text.
void ReadChosen(const FormatRule& rule, AnsweredLine* a) {
  if (!IsChoiceFormat(rule.format)) return;
  if (!a->answer.has_value()) {
    a->choice_why = a->problem.empty() ? "no answer" : a->problem;
    return;
  }
  if (a->truncated) {
    a->choice_why = "cut off: nothing is read from it";
    return;
  }
  const std::vector<ChoiceOption> options = ParseOptions(a->question);
  Reading r = ReadChoice(rule, *a->answer, options);
  if (r.letters.empty()) {
    a->choice_why = r.why;
    return;
  }
  std::vector<std::string> texts;
  for (char c : r.letters) {
    for (const auto& o : options) {
      if (o.letter == c) texts.push_back(o.text);
    }
  }
  if (texts.size() != r.letters.size()) {
    a->choice_why = "the question's options cannot be read";
    return;
  }
  std::sort(texts.begin(), texts.end());
  a->letters = r.letters;
  a->choice = absl::StrJoin(texts, " ＋ ");
}

// The answer of a line that is present: counts, format, leaks, records.
void Examine(const Submission& s, const ojson& line_json, AnsweredLine* a, DatasetAudit* d) {
  const uint32_t at = a->file_line;
  auto it = line_json.find("answer");
  const bool unanswered = it == line_json.end() || it->is_null() ||
                          (it->is_string() && TrimSpace(it->get_ref<const std::string&>()).empty());
  if (auto sk = s.skipped.find({d->dataset, a->line}); unanswered && sk != s.skipped.end()) {
    ++d->skipped;
    a->problem = absl::StrCat("skipped: ", sk->second);
    AddProblem(d, at, "skipped", absl::StrCat(sk->second, " (left out by --skip-invalid)"));
  } else if (it == line_json.end() || it->is_null()) {
    ++d->null_or_empty;
    a->problem = it == line_json.end() ? "no answer field" : "answer is null";
    AddProblem(d, at, "null", a->problem);
  } else if (!it->is_string()) {
    ++d->invalid;
    a->problem = absl::StrCat("answer is a ", it->type_name(), ", not text");
    AddProblem(d, at, "invalid", a->problem);
  } else if (const std::string& text = it->get_ref<const std::string&>(); unanswered) {
    ++d->null_or_empty;
    a->problem = text.empty()
                     ? "empty answer"
                     : absl::StrCat("answer of ", Utf8Length(text), " whitespace characters");
    AddProblem(d, at, "empty", a->problem);
  } else {
    a->answer = text;
    ++d->format_checked;
    a->format_problem = CheckAnswer(d->rule, text, ParseOptions(a->question));
    if (a->format_problem.empty()) {
      ++d->format_ok;
    } else {
      AddProblem(d, at, "format", a->format_problem);
    }
    if (absl::StrContains(text, "<think>") || absl::StrContains(text, "</think>")) {
      a->leak = true;
      ++d->leaks;
      AddProblem(d, at, "leak", "the answer still holds a <think> tag");
    }
    if (std::string why = UntaggedReasoning(text); !why.empty()) {
      a->untagged_reasoning = true;
      ++d->untagged_reasoning;
      AddProblem(d, at, "untagged_reasoning", why);
    }
  }
  std::optional<bool> by_record;
  auto rec = s.records.find({d->dataset, a->line});
  if (rec != s.records.end()) {
    const nlohmann::json& r = rec->second;
    if (r.contains("reasoning") && r["reasoning"].is_string()) a->reasoning = r["reasoning"];
    if (r.contains("latency_s") && r["latency_s"].is_number()) a->latency_s = r["latency_s"];
    if (r.contains("usage") && r["usage"].is_object() && r["usage"].contains("total_tokens") &&
        r["usage"]["total_tokens"].is_number()) {
      a->tokens = r["usage"]["total_tokens"];
    }
    by_record = CutOffByRecord(r);
  }
  std::string cut_why;
  if (by_record.has_value()) {
    if (*by_record) cut_why = "the server stopped it at the token limit (finish_reason: length)";
  } else if (a->answer.has_value()) {
    cut_why = CutOffByText(*a->answer);
  }
  if (!cut_why.empty()) {
    a->truncated = true;
    ++d->truncated;
    AddProblem(d, at, "cut_off", cut_why);
  }
  ReadChosen(d->rule, a);
}

std::string IdOf(const AnsweredLine& a) {
  return a.other.is_object() && a.other.contains("id") ? a.other["id"].dump() : "";
}

// Groups of consecutive lines with the same other.id, compared by the text
// of the option each line chose.
void Consistency(DatasetAudit* d) {
  size_t i = 0;
  while (i < d->lines.size()) {
    const std::string id = IdOf(d->lines[i]);
    size_t j = i + 1;
    while (!id.empty() && j < d->lines.size() && IdOf(d->lines[j]) == id) ++j;
    if (j - i >= 2) {
      ++d->groups;
      bool readable = true, same = true;
      std::string first;
      for (size_t k = i; k < j; ++k) {
        AnsweredLine& a = d->lines[k];
        a.group = absl::StrCat("id ", id);
        if (a.choice.empty()) {
          readable = false;
        } else if (first.empty()) {
          first = a.choice;
        } else if (a.choice != first) {
          same = false;
        }
      }
      // Readable answers that differ are inconsistent whatever the rest say.
      const char* state = !same ? "inconsistent" : !readable ? "unreadable" : "consistent";
      if (!same) {
        d->inconsistent_ids.push_back(id);
      } else if (!readable) {
        ++d->unreadable_groups;
        d->unreadable_ids.push_back(id);
      } else {
        ++d->consistent_groups;
        d->consistent_ids.push_back(id);
      }
      for (size_t k = i; k < j; ++k) {
        d->lines[k].group_consistent = same && readable;
        d->lines[k].group_state = state;
      }
    }
    i = j;
  }
}

// What the platform names the dataset's file.
std::string FileNameOf(Track track, const std::string& dataset) {
  return track == Track::kLegacyLlm ? absl::StrCat(dataset, "_test.jsonl")
                                    : absl::StrCat(dataset, ".jsonl");
}

void AuditFile(const Submission& s, const SubmissionFile* file, const Suite* suite,
               const Dataset* ref_ds, DatasetAudit* d) {
  std::vector<RefLine> ref;
  if (ref_ds != nullptr) {
    ref = ReadReference(*suite, *ref_ds);
    d->expected = static_cast<int64_t>(ref.size());
  }
  absl::string_view contents = file ? absl::string_view(file->contents) : absl::string_view();
  if (absl::StartsWith(contents, "\xEF\xBB\xBF")) {
    d->bom = true;
    contents.remove_prefix(3);
    AddProblem(
        d, 1, "bom",
        "the file starts with a UTF-8 byte order mark (a strict JSON reader rejects line 1)");
  }
  std::vector<Entry> entries = ReadEntries(contents, &d->lines_read);
  const std::string sample =
      !ref.empty() ? ref[0].question
      : (!entries.empty() && entries[0].ok && entries[0].json.contains("question") &&
         entries[0].json["question"].is_string())
          ? entries[0].json["question"].get<std::string>()
          : "";
  d->rule = RuleFor(s.track, d->dataset, sample);
  d->repeats = HasShuffledRepeats(s.track, d->dataset);
  if (ref_ds == nullptr) {
    for (const Entry& e : entries) {
      AnsweredLine a;
      a.line = e.line;
      a.file_line = e.line;
      if (!e.ok) {
        ++d->invalid;
        a.problem = e.problem;
        AddProblem(d, e.line, "invalid", e.problem);
        d->lines.push_back(std::move(a));
        continue;
      }
      if (e.json.contains("question") && e.json["question"].is_string())
        a.question = e.json["question"];
      if (e.json.contains("other")) a.other = e.json["other"];
      a.present = true;
      ++d->present;
      Examine(s, e.json, &a, d);
      d->lines.push_back(std::move(a));
    }
  } else {
    if (file == nullptr) {
      d->missing = static_cast<int64_t>(ref.size());
      AddProblem(
          d, 0, "missing",
          absl::StrCat("file missing, ", ref.size(), " question", ref.size() == 1 ? "" : "s"));
    }
    // The platform matches answers by position: compare line by line.
    std::map<std::string, uint32_t> where;  // question+other -> input line
    for (const RefLine& r : ref) where.emplace(r.question + "\x1f" + r.other.dump(), r.line);
    for (size_t i = 0; i < ref.size(); ++i) {
      const RefLine& r = ref[i];
      AnsweredLine a;
      a.line = r.line;
      a.question = r.question;
      a.other = r.other;
      if (file == nullptr) {
        a.problem = "the file is missing";
      } else if (i >= entries.size()) {
        ++d->missing;
        a.problem = "no line for this question (the file is shorter)";
        AddProblem(d, r.line, "missing",
                   absl::StrCat("no line for the question of input line ", r.line,
                                " (the file has ", d->lines_read, " lines)"));
      } else if (const Entry& e = entries[i]; !e.ok) {
        ++d->invalid;
        a.file_line = e.line;
        a.problem = e.problem;
        AddProblem(d, e.line, "invalid", e.problem);
      } else {
        a.file_line = e.line;
        const ojson& j = e.json;
        const bool same_q = j.contains("question") && j["question"] == r.question;
        const bool same_o = j.contains("other") && j["other"] == r.other;
        if (!same_q || !same_o) {
          ++d->mismatched;
          std::string key = j.contains("question") && j["question"].is_string()
                                ? j["question"].get<std::string>() + "\x1f" +
                                      (j.contains("other") ? j["other"].dump() : "")
                                : "";
          auto w = where.find(key);
          a.problem = w != where.end()
                          ? absl::StrCat("holds the question of input line ", w->second)
                      : !same_q ? "question differs from the input"
                                : "other differs from the input";
          AddProblem(d, e.line, w != where.end() ? "out-of-order" : "mismatch", a.problem);
        } else {
          a.present = true;
          ++d->present;
          Examine(s, j, &a, d);
        }
      }
      if (a.choice_why.empty() && !a.present && IsChoiceFormat(d->rule.format)) {
        a.choice_why = a.problem;
      }
      d->lines.push_back(std::move(a));
    }
    for (size_t i = ref.size(); i < entries.size(); ++i) {
      ++d->extra;
      AddProblem(d, entries[i].line, "extra", "a line beyond the input's questions");
    }
  }
  if (d->repeats) Consistency(d);
}

}  // namespace

bool DatasetAudit::complete() const {
  return !file.empty() && missing == 0 && null_or_empty == 0 && mismatched == 0 && invalid == 0 &&
         extra == 0 && (expected < 0 || present == expected);
}

bool AuditReport::ok(bool strict) const {
  for (const DatasetAudit& d : datasets) {
    if (!d.complete()) return false;
    if (strict && (d.format_ok != d.format_checked || d.leaks > 0 || d.skipped > 0 ||
                   d.untagged_reasoning > 0 || d.truncated > 0 || d.bom)) {
      return false;
    }
  }
  return !datasets.empty();
}

AuditReport Audit(const Submission& s, const Suite* reference) {
  AuditReport r;
  r.path = s.path;
  r.label = s.label;
  r.label_source = s.label_source;
  r.read_from = s.read_from;
  if (s.manifest.has_value() && s.manifest->contains("cost") && (*s.manifest)["cost"].is_object() &&
      (*s.manifest)["cost"].value("total", -1.0) >= 0) {
    r.cost = (*s.manifest)["cost"]["total"].get<double>();
  }
  r.folder = s.folder;
  r.track = s.track;
  r.has_reference = reference != nullptr;
  std::map<std::string, const SubmissionFile*> files;
  for (const SubmissionFile& f : s.files) files[f.dataset] = &f;
  std::map<std::string, const Dataset*> refs;
  if (reference != nullptr) {
    if (reference->track != s.track) {
      r.notes.push_back(absl::StrCat("the questions are a ", TrackName(reference->track),
                                     " suite but the submission is ", TrackName(s.track)));
    }
    for (const Dataset& ds : reference->datasets) refs[ds.file.name] = &ds;
  }
  std::map<std::string, bool> names;
  for (const auto& [n, f] : files) names[n] = true;
  for (const auto& [n, d] : refs) names[n] = true;
  for (const auto& [name, unused] : names) {
    DatasetAudit d;
    d.dataset = name;
    auto f = files.find(name);
    auto ref = refs.find(name);
    const SubmissionFile* file = f == files.end() ? nullptr : f->second;
    d.file = file != nullptr ? file->name : "";
    d.expected_file = FileNameOf(s.track, name);
    if (reference != nullptr && ref == refs.end()) {
      r.notes.push_back(absl::StrCat(file->name, " is not a dataset of the given questions"));
    }
    AuditFile(s, file, reference, ref == refs.end() ? nullptr : ref->second, &d);
    r.datasets.push_back(std::move(d));
  }
  return r;
}

}  // namespace medeval
