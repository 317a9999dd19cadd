#include "audit/audit_output.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/version.h"

namespace medeval {
namespace {

using ojson = nlohmann::ordered_json;

struct Totals {
  int64_t expected = 0, lines_read = 0, present = 0, missing = 0, null_or_empty = 0, skipped = 0,
          mismatched = 0, invalid = 0, extra = 0, format_checked = 0, format_ok = 0, groups = 0,
          consistent = 0, inconsistent = 0, unreadable = 0, leaks = 0, untagged = 0, truncated = 0,
          bom = 0;
  bool expected_known = true;
};

Totals Sum(const AuditReport& r) {
  Totals t;
  for (const DatasetAudit& d : r.datasets) {
    if (d.expected < 0) t.expected_known = false;
    t.expected += std::max<int64_t>(0, d.expected);
    t.lines_read += d.lines_read;
    t.present += d.present;
    t.missing += d.missing;
    t.null_or_empty += d.null_or_empty;
    t.skipped += d.skipped;
    t.mismatched += d.mismatched;
    t.invalid += d.invalid;
    t.extra += d.extra;
    t.format_checked += d.format_checked;
    t.format_ok += d.format_ok;
    t.groups += d.groups;
    t.consistent += d.consistent_groups;
    t.inconsistent += static_cast<int64_t>(d.inconsistent_ids.size());
    t.unreadable += d.unreadable_groups;
    t.leaks += d.leaks;
    t.untagged += d.untagged_reasoning;
    t.truncated += d.truncated;
    t.bom += d.bom ? 1 : 0;
  }
  return t;
}

// "12/30" with the questions as denominator, or the lines read when the
// questions were not given.
std::string Present(int64_t present, int64_t expected, bool known, int64_t lines_read) {
  return known ? Fraction(present, expected) : absl::StrCat(present, "/", lines_read);
}

}  // namespace

std::string Fraction(int64_t part, int64_t whole) {
  if (whole <= 0) return "-";
  return absl::StrCat(part, "/", whole);
}

std::string AuditTable(const AuditReport& r, size_t per_dataset) {
  std::string out = absl::StrFormat(
      "%s (%s; label from %s)\nread: %s%s\n", r.label, TrackName(r.track),
      r.label_source.empty() ? "the path" : r.label_source,
      r.read_from.empty() ? r.path : r.read_from,
      r.has_reference ? "" : "\n(no --data: completeness unchecked; PRESENT counts lines read)");
  absl::StrAppendFormat(&out, "%-20s %-24s %11s %7s %6s %7s %8s %7s %5s %11s %11s %5s %8s %9s\n",
                        "DATASET", "FORMAT", "PRESENT", "MISSING", "NULL", "SKIPPED", "MISMATCH",
                        "INVALID", "EXTRA", "FORMAT OK", "CONSISTENT", "LEAKS", "UNTAGGED",
                        "TRUNCATED");
  auto row = [&](const std::string& name, const std::string& format, const std::string& present,
                 int64_t missing, int64_t nulls, int64_t skipped, int64_t mismatch, int64_t invalid,
                 int64_t extra, const std::string& fmt, const std::string& cons, int64_t leaks,
                 int64_t untagged, int64_t truncated) {
    absl::StrAppendFormat(&out, "%-20s %-24s %11s %7d %6d %7d %8d %7d %5d %11s %11s %5d %8d %9d\n",
                          name, format, present, missing, nulls, skipped, mismatch, invalid, extra,
                          fmt, cons, leaks, untagged, truncated);
  };
  for (const DatasetAudit& d : r.datasets) {
    row(d.dataset, AnswerFormatName(d.rule.format),
        Present(d.present, d.expected, d.expected >= 0, d.lines_read), d.missing, d.null_or_empty,
        d.skipped, d.mismatched, d.invalid, d.extra, Fraction(d.format_ok, d.format_checked),
        d.repeats ? Fraction(d.consistent_groups, d.groups) : "-", d.leaks, d.untagged_reasoning,
        d.truncated);
  }
  Totals t = Sum(r);
  row("TOTAL", "", Present(t.present, t.expected, t.expected_known, t.lines_read), t.missing,
      t.null_or_empty, t.skipped, t.mismatched, t.invalid, t.extra,
      absl::StrCat(t.format_ok, "/", t.format_checked), absl::StrCat(t.consistent, "/", t.groups),
      t.leaks, t.untagged, t.truncated);
  for (const DatasetAudit& d : r.datasets) {
    const std::string& name = d.file.empty() ? d.expected_file : d.file;
    for (size_t i = 0; i < d.problems.size() && i < per_dataset; ++i) {
      const LineProblem& p = d.problems[i];
      if (p.line == 0) {
        absl::StrAppend(&out, "  ", name, ": ", p.detail, "\n");
      } else {
        absl::StrAppend(&out, "  ", name, ":", p.line, ": ", p.kind, ": ", p.detail, "\n");
      }
    }
    if (d.problems.size() > per_dataset) {
      absl::StrAppend(&out, "  ", name, ": ... ", d.problems.size() - per_dataset,
                      " more in audit.json\n");
    }
    if (!d.inconsistent_ids.empty() || !d.unreadable_ids.empty()) {
      absl::StrAppend(&out, "  ", name, ": shuffled ids ",
                      d.inconsistent_ids.empty()
                          ? ""
                          : absl::StrCat("inconsistent ", absl::StrJoin(d.inconsistent_ids, ", ")),
                      !d.inconsistent_ids.empty() && !d.unreadable_ids.empty() ? "; " : "",
                      d.unreadable_ids.empty()
                          ? ""
                          : absl::StrCat("unreadable ", absl::StrJoin(d.unreadable_ids, ", ")),
                      "\n");
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
  j["label_source"] = r.label_source;
  j["read_from"] = r.read_from;
  j["track"] = std::string(TrackName(r.track));
  j["folder"] = r.folder;
  j["checked_against_questions"] = r.has_reference;
  j["ok"] = r.ok(strict);
  Totals t = Sum(r);
  j["totals"] = {{"expected", t.expected_known ? ojson(t.expected) : ojson(nullptr)},
                 {"lines_read", t.lines_read},
                 {"present", t.present},
                 {"missing", t.missing},
                 {"null_or_empty", t.null_or_empty},
                 {"skipped", t.skipped},
                 {"mismatched", t.mismatched},
                 {"invalid", t.invalid},
                 {"extra", t.extra},
                 {"bom", t.bom},
                 {"format_checked", t.format_checked},
                 {"format_ok", t.format_ok},
                 {"shuffled_groups", t.groups},
                 {"consistent_groups", t.consistent},
                 {"inconsistent_groups", t.inconsistent},
                 {"unreadable_groups", t.unreadable},
                 {"reasoning_leaks", t.leaks},
                 {"untagged_reasoning", t.untagged},
                 {"truncated", t.truncated}};
  ojson datasets = ojson::array();
  for (const DatasetAudit& d : r.datasets) {
    ojson x;
    x["dataset"] = d.dataset;
    x["file"] = d.file.empty() ? ojson(nullptr) : ojson(d.file);
    x["bom"] = d.bom;
    x["lines_read"] = d.lines_read;
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
                                          {"inconsistent", d.inconsistent_ids.size()},
                                          {"unreadable", d.unreadable_groups},
                                          {"consistent_ids", d.consistent_ids},
                                          {"inconsistent_ids", d.inconsistent_ids},
                                          {"unreadable_ids", d.unreadable_ids}})
                                 : ojson(nullptr);
    x["reasoning_leaks"] = d.leaks;
    x["untagged_reasoning"] = d.untagged_reasoning;
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
