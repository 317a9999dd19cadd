#include "audit/compare_tables.h"

#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"

namespace medeval {
namespace {

// One line per dataset and model, datasets in name order.
struct Row {
  std::string dataset;
  std::string model;
  const DatasetAudit* d;  // null: the model has no such dataset
};

std::vector<Row> Rows(const std::vector<AuditReport>& reports) {
  std::map<std::string, std::vector<const DatasetAudit*>> by_name;
  for (size_t m = 0; m < reports.size(); ++m) {
    for (const DatasetAudit& d : reports[m].datasets) {
      auto& v = by_name[d.dataset];
      v.resize(reports.size(), nullptr);
      v[m] = &d;
    }
  }
  std::vector<Row> rows;
  for (auto& [name, v] : by_name) {
    v.resize(reports.size(), nullptr);
    for (size_t m = 0; m < reports.size(); ++m) rows.push_back({name, reports[m].label, v[m]});
  }
  return rows;
}

struct Cells {
  std::string answered, format, consistent, cut_off, untagged, problems;
};

std::string Frac(int64_t part, int64_t whole) {
  return whole <= 0 ? "–" : absl::StrCat(part, "/", whole);
}

Cells CellsOf(const DatasetAudit* d) {
  if (d == nullptr) return {"–", "–", "–", "–", "–", "no file for this dataset"};
  const int64_t questions = d->expected >= 0 ? d->expected : d->lines_read;
  return {Frac(d->present - d->null_or_empty - d->skipped, questions),
          Frac(d->format_ok, d->format_checked),
          d->repeats ? Frac(d->consistent_groups, d->groups) : "–",
          absl::StrCat(d->truncated),
          absl::StrCat(d->untagged_reasoning),
          DatasetProblems(*d)};
}

std::string Pct(double v) { return v < 0 ? "–" : absl::StrFormat("%.1f%%", 100 * v); }

std::string ConsensusCaption(const ConsensusReport& c) {
  return absl::StrCat(
      "Estimates, not scores: MedBench publishes no gold answers. From the choices of ", c.models,
      " models, compared by option text across models and shuffles. Agreement: the share of a "
      "model's answers that match the consensus option of the other models (unreadable and "
      "missing answers count as not matching). Estimated accuracy: a one-coin Dawid–Skene model "
      "fitted on all models' choices. Models that make the same mistakes raise each other's "
      "estimates.");
}

}  // namespace

std::string HtmlEscape(absl::string_view s) {
  return absl::StrReplaceAll(s, {{"&", "&amp;"}, {"<", "&lt;"}, {">", "&gt;"}, {"\"", "&quot;"}});
}

std::string DatasetProblems(const DatasetAudit& d) {
  if (d.file.empty()) return "file missing";
  std::vector<std::string> parts;
  auto add = [&](int64_t n, const char* what) {
    if (n > 0) parts.push_back(absl::StrCat(n, " ", what));
  };
  if (d.bom) parts.push_back("byte order mark");
  add(d.missing, "missing");
  add(d.null_or_empty, "null or empty");
  add(d.skipped, "skipped");
  add(d.mismatched, "mismatched");
  add(d.invalid, "invalid");
  add(d.extra, "extra");
  add(d.leaks, "think tags");
  return absl::StrJoin(parts, ", ");
}

std::string DatasetTableHtml(const std::vector<AuditReport>& reports) {
  std::string h =
      "<h2>By dataset</h2>\n<table id=\"datasets\"><thead><tr><th>dataset</th><th>model</th>"
      "<th>answered</th><th>in format</th><th>consistent ids</th><th>cut off</th>"
      "<th>untagged reasoning</th><th>problems</th></tr></thead><tbody>\n";
  std::string last;
  for (const Row& r : Rows(reports)) {
    const Cells c = CellsOf(r.d);
    absl::StrAppend(&h, "<tr", r.dataset != last ? " class=\"first\"" : "", "><td>",
                    r.dataset != last ? HtmlEscape(r.dataset) : "", "</td><td>",
                    HtmlEscape(r.model), "</td><td>", c.answered, "</td><td>", c.format,
                    "</td><td>", c.consistent, "</td><td>", c.cut_off, "</td><td>", c.untagged,
                    "</td><td class=\"problems\">", HtmlEscape(c.problems), "</td></tr>\n");
    last = r.dataset;
  }
  return h + "</tbody></table>\n";
}

std::string DatasetTableMarkdown(const std::vector<AuditReport>& reports) {
  std::string md =
      "\n## By dataset\n\n| dataset | model | answered | in format | consistent ids | cut off | "
      "untagged reasoning | problems |\n|---|---|---:|---:|---:|---:|---:|---|\n";
  for (const Row& r : Rows(reports)) {
    const Cells c = CellsOf(r.d);
    absl::StrAppend(&md, "| ", r.dataset, " | ", r.model, " | ", c.answered, " | ", c.format, " | ",
                    c.consistent, " | ", c.cut_off, " | ", c.untagged, " | ", c.problems, " |\n");
  }
  return md;
}

std::string ConsensusHtml(const ConsensusReport& c) {
  if (!c.computed) {
    return absl::StrCat("<h2>Consensus estimates</h2>\n<p class=\"why\">Not computed: ", c.models,
                        " model", c.models == 1 ? "" : "s", "; estimates need at least ",
                        kMinConsensusModels, ".</p>\n");
  }
  if (c.datasets.empty()) return "";
  std::string h = absl::StrCat("<h2>Consensus estimates (", c.models,
                               " models)</h2>\n<p class=\"why\">", HtmlEscape(ConsensusCaption(c)),
                               "</p>\n<table id=\"consensus\"><thead><tr><th>dataset</th>"
                               "<th>questions (with consensus)</th>");
  for (const auto& m : c.overall) {
    absl::StrAppend(&h, "<th>", HtmlEscape(m.model), "<br>agreement · est. accuracy</th>");
  }
  h += "</tr></thead><tbody>\n";
  auto cells = [&](const std::vector<ModelConsensus>& ms) {
    std::string out;
    for (const auto& m : ms) {
      absl::StrAppend(&out, "<td>", Pct(m.agreement()), " · ", Pct(m.estimated_accuracy()),
                      "</td>");
    }
    return out;
  };
  int64_t items = 0, with = 0;
  for (const auto& d : c.datasets) {
    items += d.items;
    with += d.items_with_consensus;
    absl::StrAppend(&h, "<tr><td>", HtmlEscape(d.dataset), "</td><td>", d.items, " (",
                    d.items_with_consensus, ")</td>", cells(d.models), "</tr>\n");
  }
  absl::StrAppend(&h, "<tr class=\"total\"><td>overall</td><td>", items, " (", with, ")</td>",
                  cells(c.overall), "</tr>\n</tbody></table>\n");
  return h;
}

std::string ConsensusMarkdown(const ConsensusReport& c) {
  if (!c.computed) {
    return absl::StrCat("\n## Consensus estimates\n\nNot computed: ", c.models, " model",
                        c.models == 1 ? "" : "s", "; estimates need at least ", kMinConsensusModels,
                        ".\n");
  }
  if (c.datasets.empty()) return "";
  std::string md =
      absl::StrCat("\n## Consensus estimates (", c.models, " models)\n\n", ConsensusCaption(c),
                   "\n\nEach cell: agreement with the others' consensus · estimated accuracy.\n\n"
                   "| dataset | questions (with consensus) |");
  std::string rule = "|---|---:|";
  for (const auto& m : c.overall) {
    absl::StrAppend(&md, " ", m.model, " |");
    rule += "---:|";
  }
  md += "\n" + rule + "\n";
  auto cells = [&](const std::vector<ModelConsensus>& ms) {
    std::string out;
    for (const auto& m : ms) {
      absl::StrAppend(&out, " ", Pct(m.agreement()), " · ", Pct(m.estimated_accuracy()), " |");
    }
    return out;
  };
  int64_t items = 0, with = 0;
  for (const auto& d : c.datasets) {
    items += d.items;
    with += d.items_with_consensus;
    absl::StrAppend(&md, "| ", d.dataset, " | ", d.items, " (", d.items_with_consensus, ") |",
                    cells(d.models), "\n");
  }
  absl::StrAppend(&md, "| **overall** | ", items, " (", with, ") |", cells(c.overall), "\n");
  return md;
}

}  // namespace medeval
