#include "audit/audit_output.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/version.h"

namespace medeval {
namespace {

using ojson = nlohmann::ordered_json;

struct Totals {
  int64_t expected = 0, present = 0, missing = 0, null_or_empty = 0, skipped = 0, mismatched = 0,
          invalid = 0, extra = 0, format_checked = 0, format_ok = 0, groups = 0, consistent = 0,
          leaks = 0, truncated = 0;
  bool expected_known = true;
};

Totals Sum(const AuditReport& r) {
  Totals t;
  for (const DatasetAudit& d : r.datasets) {
    if (d.expected < 0) t.expected_known = false;
    t.expected += std::max<int64_t>(0, d.expected);
    t.present += d.present;
    t.missing += d.missing;
    t.null_or_empty += d.null_or_empty;
    t.skipped += d.skipped;
    t.mismatched += d.mismatched;
    t.invalid += d.invalid + d.extra;
    t.format_checked += d.format_checked;
    t.format_ok += d.format_ok;
    t.groups += d.groups;
    t.consistent += d.consistent_groups;
    t.leaks += d.leaks;
    t.truncated += d.truncated;
  }
  return t;
}

}  // namespace

std::string Fraction(int64_t part, int64_t whole) {
  if (whole <= 0) return "-";
  return absl::StrCat(part, "/", whole);
}

std::string AuditTable(const AuditReport& r, size_t per_dataset) {
  std::string out = absl::StrFormat("%s (%s, %s)%s\n", r.label, TrackName(r.track), r.path,
                                    r.has_reference ? "" : " — no --data: completeness unchecked");
  absl::StrAppendFormat(&out, "%-20s %-24s %11s %7s %6s %7s %8s %7s %11s %11s %5s\n", "DATASET",
                        "FORMAT", "PRESENT", "MISSING", "NULL", "SKIPPED", "MISMATCH", "INVALID",
                        "FORMAT OK", "CONSISTENT", "LEAKS");
  auto row = [&](const std::string& name, const std::string& format, const std::string& present,
                 int64_t missing, int64_t nulls, int64_t skipped, int64_t mismatch, int64_t invalid,
                 const std::string& fmt, const std::string& cons, int64_t leaks) {
    absl::StrAppendFormat(&out, "%-20s %-24s %11s %7d %6d %7d %8d %7d %11s %11s %5d\n", name,
                          format, present, missing, nulls, skipped, mismatch, invalid, fmt, cons,
                          leaks);
  };
  for (const DatasetAudit& d : r.datasets) {
    row(d.dataset, AnswerFormatName(d.rule.format),
        d.expected >= 0 ? Fraction(d.present, d.expected) : absl::StrCat(d.present), d.missing,
        d.null_or_empty, d.skipped, d.mismatched, d.invalid + d.extra,
        Fraction(d.format_ok, d.format_checked),
        d.repeats ? Fraction(d.consistent_groups, d.groups) : "-", d.leaks);
  }
  Totals t = Sum(r);
  row("TOTAL", "", t.expected_known ? Fraction(t.present, t.expected) : absl::StrCat(t.present),
      t.missing, t.null_or_empty, t.skipped, t.mismatched, t.invalid,
      Fraction(t.format_ok, t.format_checked), Fraction(t.consistent, t.groups), t.leaks);
  for (const DatasetAudit& d : r.datasets) {
    for (size_t i = 0; i < d.problems.size() && i < per_dataset; ++i) {
      const LineProblem& p = d.problems[i];
      absl::StrAppend(&out, "  ", d.file.empty() ? d.dataset : d.file, ":", p.line, ": ", p.kind,
                      ": ", p.detail, "\n");
    }
    if (d.problems.size() > per_dataset) {
      absl::StrAppend(&out, "  ", d.file.empty() ? d.dataset : d.file, ": ... ",
                      d.problems.size() - per_dataset, " more in audit.json\n");
    }
  }
  for (const std::string& n : r.notes) absl::StrAppend(&out, "note: ", n, "\n");
  return out;
}

ojson AuditJson(const AuditReport& r, bool strict, size_t max_problems) {
  ojson j;
  j["medeval_version"] = kVersion;
  j["path"] = r.path;
  j["label"] = r.label;
  j["track"] = std::string(TrackName(r.track));
  j["folder"] = r.folder;
  j["checked_against_questions"] = r.has_reference;
  j["ok"] = r.ok(strict);
  Totals t = Sum(r);
  j["totals"] = {{"expected", t.expected_known ? ojson(t.expected) : ojson(nullptr)},
                 {"present", t.present},
                 {"missing", t.missing},
                 {"null_or_empty", t.null_or_empty},
                 {"skipped", t.skipped},
                 {"mismatched", t.mismatched},
                 {"invalid", t.invalid},
                 {"format_checked", t.format_checked},
                 {"format_ok", t.format_ok},
                 {"shuffled_groups", t.groups},
                 {"consistent_groups", t.consistent},
                 {"reasoning_leaks", t.leaks},
                 {"truncated", t.truncated}};
  ojson datasets = ojson::array();
  for (const DatasetAudit& d : r.datasets) {
    ojson x;
    x["dataset"] = d.dataset;
    x["file"] = d.file.empty() ? ojson(nullptr) : ojson(d.file);
    x["complete"] = d.complete();
    x["expected"] = d.expected >= 0 ? ojson(d.expected) : ojson(nullptr);
    x["present"] = d.present;
    x["missing"] = d.missing;
    x["null_or_empty"] = d.null_or_empty;
    x["skipped"] = d.skipped;
    x["mismatched"] = d.mismatched;
    x["invalid"] = d.invalid;
    x["extra"] = d.extra;
    x["format"] = {{"rule", AnswerFormatName(d.rule.format)},
                   {"why", d.rule.why},
                   {"checked", d.format_checked},
                   {"ok", d.format_ok}};
    x["consistency"] = d.repeats ? ojson({{"groups", d.groups},
                                          {"consistent", d.consistent_groups},
                                          {"unreadable", d.unreadable_groups}})
                                 : ojson(nullptr);
    x["reasoning_leaks"] = d.leaks;
    x["truncated"] = d.truncated;
    ojson problems = ojson::array();
    for (size_t i = 0; i < d.problems.size() && i < max_problems; ++i) {
      problems.push_back({{"line", d.problems[i].line},
                          {"kind", d.problems[i].kind},
                          {"detail", d.problems[i].detail}});
    }
    x["problems"] = problems;
    x["problems_total"] = d.problems.size();
    datasets.push_back(std::move(x));
  }
  j["datasets"] = datasets;
  j["notes"] = r.notes;
  return j;
}

}  // namespace medeval
