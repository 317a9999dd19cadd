#include "audit/auditor.h"

#include <map>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
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

std::vector<Entry> ReadEntries(const std::string& contents) {
  std::vector<Entry> out;
  std::vector<absl::string_view> lines = SplitLines(contents);
  for (size_t i = 0; i < lines.size(); ++i) {
    absl::string_view l = lines[i];
    if (IsBlankLine(l)) continue;
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

// The answer of a line that is present: counts, format, leaks, records.
void Examine(const Submission& s, const ojson& line_json, AnsweredLine* a, DatasetAudit* d) {
  auto it = line_json.find("answer");
  const bool unanswered =
      it == line_json.end() || it->is_null() ||
      (it->is_string() && absl::StripAsciiWhitespace(it->get_ref<const std::string&>()).empty());
  if (auto sk = s.skipped.find({d->dataset, a->line}); unanswered && sk != s.skipped.end()) {
    ++d->skipped;
    AddProblem(d, a->line, "skipped", absl::StrCat(sk->second, " (left out by --skip-invalid)"));
  } else if (it == line_json.end() || it->is_null()) {
    ++d->null_or_empty;
    AddProblem(d, a->line, "null", it == line_json.end() ? "no answer field" : "answer is null");
  } else if (!it->is_string()) {
    ++d->invalid;
    AddProblem(d, a->line, "invalid", absl::StrCat("answer is a ", it->type_name(), ", not text"));
  } else {
    a->answer = it->get<std::string>();
    if (absl::StripAsciiWhitespace(*a->answer).empty()) {
      ++d->null_or_empty;
      AddProblem(d, a->line, "empty", "empty answer");
    } else {
      ++d->format_checked;
      a->format_problem = CheckAnswer(d->rule, *a->answer, ParseOptions(a->question));
      if (a->format_problem.empty()) {
        ++d->format_ok;
      } else {
        AddProblem(d, a->line, "format", a->format_problem);
      }
      if (absl::StrContains(*a->answer, "<think>") || absl::StrContains(*a->answer, "</think>")) {
        a->leak = true;
        ++d->leaks;
        AddProblem(d, a->line, "leak", "the answer still holds a <think> tag");
      }
      if (absl::StartsWith(absl::StripLeadingAsciiWhitespace(*a->answer), "<think>") &&
          !absl::StrContains(*a->answer, "</think>")) {
        a->truncated = true;
      }
    }
  }
  auto rec = s.records.find({d->dataset, a->line});
  if (rec != s.records.end()) {
    const nlohmann::json& r = rec->second;
    if (r.contains("reasoning") && r["reasoning"].is_string()) a->reasoning = r["reasoning"];
    if (r.contains("latency_s") && r["latency_s"].is_number()) a->latency_s = r["latency_s"];
    if (r.contains("usage") && r["usage"].is_object() && r["usage"].contains("total_tokens") &&
        r["usage"]["total_tokens"].is_number()) {
      a->tokens = r["usage"]["total_tokens"];
    }
    if (r.contains("finish_reason") && r["finish_reason"] == "length") a->truncated = true;
    if (r.contains("flags") && r["flags"].is_array()) {
      for (const auto& f : r["flags"]) {
        if (f == "truncated" || f == "think_unterminated") a->truncated = true;
      }
    }
  }
  if (a->truncated) ++d->truncated;
}

// Groups of consecutive lines with the same other.id; each line's chosen
// option by its text.
void Consistency(DatasetAudit* d) {
  size_t i = 0;
  auto id_of = [](const AnsweredLine& a) -> std::string {
    return a.other.is_object() && a.other.contains("id") ? a.other["id"].dump() : "";
  };
  while (i < d->lines.size()) {
    const std::string id = id_of(d->lines[i]);
    size_t j = i + 1;
    while (!id.empty() && j < d->lines.size() && id_of(d->lines[j]) == id) ++j;
    if (j - i >= 2) {
      ++d->groups;
      bool readable = true, same = true;
      std::string first;
      for (size_t k = i; k < j; ++k) {
        AnsweredLine& a = d->lines[k];
        a.group = absl::StrCat("id ", id);
        std::optional<char> letter;
        std::vector<ChoiceOption> options = ParseOptions(a.question);
        if (a.answer.has_value()) letter = ChosenLetter(*a.answer, options);
        for (const auto& o : options) {
          if (letter.has_value() && o.letter == *letter) a.choice = o.text;
        }
        if (a.choice.empty()) {
          readable = false;
        } else if (first.empty()) {
          first = a.choice;
        } else if (a.choice != first) {
          same = false;
        }
      }
      const bool consistent = readable && same;
      if (consistent) ++d->consistent_groups;
      if (!readable) ++d->unreadable_groups;
      for (size_t k = i; k < j; ++k) d->lines[k].group_consistent = consistent;
    }
    i = j;
  }
}

void AuditFile(const Submission& s, const SubmissionFile* file, const Suite* suite,
               const Dataset* ref_ds, DatasetAudit* d) {
  std::vector<RefLine> ref;
  if (ref_ds != nullptr) {
    ref = ReadReference(*suite, *ref_ds);
    d->expected = static_cast<int64_t>(ref.size());
  }
  std::vector<Entry> entries = file ? ReadEntries(file->contents) : std::vector<Entry>();
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
      if (!e.ok) {
        ++d->invalid;
        AddProblem(d, e.line, "invalid", e.problem);
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
    // The platform matches answers by position: compare line by line.
    std::map<std::string, uint32_t> where;  // question+other -> input line
    for (const RefLine& r : ref) where.emplace(r.question + "\x1f" + r.other.dump(), r.line);
    for (size_t i = 0; i < ref.size(); ++i) {
      const RefLine& r = ref[i];
      AnsweredLine a;
      a.line = r.line;
      a.question = r.question;
      a.other = r.other;
      if (i >= entries.size()) {
        ++d->missing;
        AddProblem(
            d, r.line, "missing",
            file ? "no line for this question (the file is shorter)" : "the file is missing");
      } else if (const Entry& e = entries[i]; !e.ok) {
        ++d->invalid;
        AddProblem(d, r.line, "invalid", e.problem);
      } else {
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
          AddProblem(d, r.line, w != where.end() ? "out-of-order" : "mismatch",
                     w != where.end() ? absl::StrCat("holds the question of input line ", w->second)
                     : !same_q        ? "question differs from the input"
                                      : "other differs from the input");
        } else {
          a.present = true;
          ++d->present;
          Examine(s, j, &a, d);
        }
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
    if (strict && (d.format_ok != d.format_checked || d.leaks > 0 || d.skipped > 0)) return false;
  }
  return !datasets.empty();
}

AuditReport Audit(const Submission& s, const Suite* reference) {
  AuditReport r;
  r.path = s.path;
  r.label = s.label;
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
    if (file != nullptr) d.file = file->name;
    if (reference != nullptr && ref == refs.end()) {
      r.notes.push_back(absl::StrCat(file->name, " is not a dataset of the given questions"));
    }
    AuditFile(s, file, reference, ref == refs.end() ? nullptr : ref->second, &d);
    r.datasets.push_back(std::move(d));
  }
  return r;
}

}  // namespace medeval
