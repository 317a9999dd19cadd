#include "audit/compare_report.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/time/clock.h"
#include "audit/compare_browser.h"
#include "audit/compare_tables.h"
#include "audit/consensus.h"
#include "audit/report_assets.h"
#include "common/cost.h"
#include "common/utf8.h"
#include "common/version.h"

namespace medeval {
namespace {

using json = nlohmann::json;

std::string Html(absl::string_view s) { return HtmlEscape(s); }

std::string Percent(int64_t part, int64_t whole) {
  if (whole <= 0) return "–";
  return absl::StrFormat("%.1f%%", 100.0 * static_cast<double>(part) / static_cast<double>(whole));
}

std::string Latency(double s) { return s < 0 ? "–" : absl::StrFormat("%.2f s", s); }

std::string Tokens(int64_t t) { return t < 0 ? "–" : absl::StrCat(t); }
std::string Cost(double c) { return c < 0 ? "–" : FormatCost(c); }

// Pixels a label takes at 12px: about 7 per ASCII character, 12 per wider one.
int LabelWidth(absl::string_view s) {
  int w = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      w += 7;
    } else if ((c & 0xc0) != 0x80) {
      w += 12;
    }
  }
  return w;
}

// A label cut to `max_px` with "…"; the whole label is in the bar's title.
std::string FitLabel(const std::string& s, int max_px) {
  if (LabelWidth(s) <= max_px) return s;
  std::string out;
  for (size_t i = 0; i < s.size();) {
    size_t n = 1;
    while (i + n < s.size() && (static_cast<unsigned char>(s[i + n]) & 0xc0) == 0x80) ++n;
    if (LabelWidth(out + s.substr(i, n)) + 12 > max_px) break;
    out += s.substr(i, n);
    i += n;
  }
  return out + "…";
}

// A horizontal bar chart, one bar per model.
std::string BarChart(const std::string& title, const std::vector<std::string>& labels,
                     const std::vector<double>& values, double max, const std::string& unit) {
  int widest = 60;
  for (const auto& l : labels) widest = std::max(widest, LabelWidth(l));
  const int label_w = std::min(widest, 320) + 12, bar_w = 260, row_h = 22;
  const int h = static_cast<int>(labels.size()) * row_h + 8;
  std::string svg = absl::StrFormat(
      R"(<div class="chart"><h3>%s</h3><svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" role="img" aria-label="%s">)",
      Html(title), label_w + bar_w + 70, h, Html(title));
  for (size_t i = 0; i < labels.size(); ++i) {
    const int y = static_cast<int>(i) * row_h + 4;
    const double v = values[i];
    const int w =
        v < 0 || max <= 0 ? 0 : static_cast<int>(std::lround(bar_w * std::min(1.0, v / max)));
    absl::StrAppendFormat(
        &svg,
        R"(<text x="%d" y="%d" text-anchor="end" font-size="12" fill="#344054"><title>%s</title>%s</text>)"
        R"(<rect x="%d" y="%d" width="%d" height="%d" rx="2" fill="#2e5aac"/>)"
        R"(<text x="%d" y="%d" font-size="12" fill="#344054">%s</text>)",
        label_w - 6, y + 14, Html(labels[i]), Html(FitLabel(labels[i], label_w - 12)), label_w,
        y + 3, w, row_h - 8, label_w + w + 6, y + 14,
        v < 0 ? "–" : absl::StrFormat("%.1f%s", v, unit));
  }
  return svg + "</svg></div>";
}

std::string Fmt(const std::optional<double>& v) {
  return v.has_value() ? absl::StrFormat("%.2f", *v) : "–";
}

}  // namespace

ModelSummary Summarize(const AuditReport& r) {
  ModelSummary s;
  s.model = r.label;
  double latency_sum = 0;
  int64_t latency_n = 0, tokens = 0;
  bool have_tokens = false;
  for (const DatasetAudit& d : r.datasets) {
    s.questions += d.expected >= 0 ? d.expected : d.present;
    s.answered += d.present - d.null_or_empty - d.skipped;
    s.format_checked += d.format_checked;
    s.format_ok += d.format_ok;
    s.groups += d.groups;
    s.consistent_groups += d.consistent_groups;
    s.leaks += d.leaks;
    s.untagged_reasoning += d.untagged_reasoning;
    s.truncated += d.truncated;
    for (const AnsweredLine& a : d.lines) {
      if (a.latency_s >= 0) {
        latency_sum += a.latency_s;
        ++latency_n;
      }
      if (a.tokens >= 0) {
        tokens += a.tokens;
        have_tokens = true;
      }
    }
  }
  if (latency_n > 0) s.mean_latency_s = latency_sum / static_cast<double>(latency_n);
  if (have_tokens) s.tokens = tokens;
  s.cost = r.cost;
  return s;
}

std::string CompareHtml(const std::vector<AuditReport>& reports, const Scores* scores) {
  std::vector<ModelSummary> sums;
  for (const auto& r : reports) sums.push_back(Summarize(r));
  std::string h = R"(<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>MedBench answers compared</title>
<style>)";
  h += kReportCss;
  h += "</style></head><body>\n<h1>MedBench answers compared</h1>\n";
  std::set<std::string> tracks;
  for (const auto& r : reports) tracks.insert(std::string(TrackName(r.track)));
  absl::StrAppend(&h, "<p class=\"meta\">", reports.size(), " models · ",
                  Html(absl::StrJoin(tracks, ", ")), " · generated by medeval ", kVersion, " on ",
                  absl::FormatTime("%Y-%m-%d %H:%M UTC", absl::Now(), absl::UTCTimeZone()),
                  "</p>\n");

  h += "<h2>Models</h2>\n<table id=\"summary\"><thead><tr><th>model</th><th>questions</th>"
       "<th>answered</th><th>answers in format</th><th>consistent shuffled ids</th>"
       "<th>think tags left</th><th>untagged reasoning</th><th>cut off</th><th>mean latency</th>"
       "<th>tokens</th><th>cost</th></tr>"
       "</thead><tbody>\n";
  for (const ModelSummary& s : sums) {
    absl::StrAppend(
        &h, "<tr><td>", Html(s.model), "</td><td>", s.questions, "</td><td>",
        Percent(s.answered, s.questions), "</td><td>", Percent(s.format_ok, s.format_checked),
        "</td><td>", s.groups > 0 ? absl::StrCat(s.consistent_groups, "/", s.groups) : "–",
        "</td><td>", s.leaks, "</td><td>", s.untagged_reasoning, "</td><td>", s.truncated,
        "</td><td>", Latency(s.mean_latency_s), "</td><td>", Tokens(s.tokens), "</td><td>",
        Cost(s.cost), "</td></tr>\n");
  }
  h += "</tbody></table>\n<h2>At a glance</h2>\n<div class=\"charts\">";
  std::vector<std::string> labels;
  std::vector<double> answered, format, consistent, latency;
  double max_latency = 0;
  for (const ModelSummary& s : sums) {
    labels.push_back(s.model);
    answered.push_back(s.questions > 0 ? 100.0 * s.answered / s.questions : -1);
    format.push_back(s.format_checked > 0 ? 100.0 * s.format_ok / s.format_checked : -1);
    consistent.push_back(s.groups > 0 ? 100.0 * s.consistent_groups / s.groups : -1);
    latency.push_back(s.mean_latency_s);
    max_latency = std::max(max_latency, s.mean_latency_s);
  }
  h += BarChart("answered", labels, answered, 100, "%");
  h += BarChart("answers in the asked format", labels, format, 100, "%");
  h += BarChart("same option across shuffles", labels, consistent, 100, "%");
  if (max_latency > 0) h += BarChart("mean latency", labels, latency, max_latency, " s");
  h += "</div>\n";

  if (scores != nullptr) {
    h += "<h2>Leaderboard (platform scores)</h2>\n<table "
         "id=\"leaderboard\"><thead><tr><th>model</th>";
    for (const Dimension& d : V4Dimensions()) absl::StrAppend(&h, "<th>", Html(d.name), "</th>");
    h += "<th>overall</th></tr></thead><tbody>\n";
    for (const LeaderboardRow& row : Leaderboard(*scores)) {
      absl::StrAppend(&h, "<tr><td>", Html(row.model), "</td>");
      for (const auto& v : row.dimensions) absl::StrAppend(&h, "<td>", Fmt(v), "</td>");
      absl::StrAppend(&h, "<td><b>", Fmt(row.overall), "</b></td></tr>\n");
    }
    h += "</tbody></table>\n<p class=\"why\">A dimension is the plain mean of its tasks' scores, "
         "the overall score the plain mean of the five dimensions (– where a task has no score).";
    for (const std::string& n : scores->notes) absl::StrAppend(&h, " ", Html(n), ".");
    h += "</p>\n";
  }

  const ConsensusReport consensus = ComputeConsensus(reports);
  h += DatasetTableHtml(reports);
  h += ConsensusHtml(consensus);
  h += "<h2>Questions</h2>\n<div id=\"browser\"></div>\n<script id=\"data\" "
       "type=\"application/json\">";
  // "</" would end the script element early.
  h += absl::StrReplaceAll(
      BrowserData(reports, consensus).dump(-1, ' ', false, json::error_handler_t::replace),
      {{"</", "<\\/"}});
  h += "</script>\n<script>";
  h += kReportJs;
  h += "</script>\n</body></html>\n";
  return h;
}

std::string CompareMarkdown(const std::vector<AuditReport>& reports, const Scores* scores) {
  std::string md =
      "## Models\n\n| model | questions | answered | answers in format | "
      "consistent shuffled ids | think tags left | untagged reasoning | cut off | mean latency | "
      "tokens | cost |\n"
      "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n";
  for (const auto& r : reports) {
    ModelSummary s = Summarize(r);
    absl::StrAppend(&md, "| ", s.model, " | ", s.questions, " | ", Percent(s.answered, s.questions),
                    " | ", Percent(s.format_ok, s.format_checked), " | ",
                    s.groups > 0 ? absl::StrCat(s.consistent_groups, "/", s.groups) : "–", " | ",
                    s.leaks, " | ", s.untagged_reasoning, " | ", s.truncated, " | ",
                    Latency(s.mean_latency_s), " | ", Tokens(s.tokens), " | ",
                    Cost(s.cost), " |\n");
  }
  if (scores != nullptr) {
    md += "\n## Leaderboard (platform scores)\n\n| model |";
    std::string rule = "|---|";
    for (const Dimension& d : V4Dimensions()) {
      absl::StrAppend(&md, " ", d.name, " |");
      rule += "---:|";
    }
    md += " overall |\n" + rule + "---:|\n";
    for (const LeaderboardRow& row : Leaderboard(*scores)) {
      absl::StrAppend(&md, "| ", row.model, " |");
      for (const auto& v : row.dimensions) absl::StrAppend(&md, " ", Fmt(v), " |");
      absl::StrAppend(&md, " **", Fmt(row.overall), "** |\n");
    }
  }
  md += "\n## Answers in the asked format, by dataset\n\n| dataset | format |";
  std::string rule = "|---|---|";
  for (const auto& r : reports) {
    absl::StrAppend(&md, " ", r.label, " |");
    rule += "---:|";
  }
  md += "\n" + rule + "\n";
  std::map<std::string, std::vector<const DatasetAudit*>> rows;
  for (size_t m = 0; m < reports.size(); ++m) {
    for (const DatasetAudit& d : reports[m].datasets) {
      auto& v = rows[d.dataset];
      v.resize(reports.size(), nullptr);
      v[m] = &d;
    }
  }
  for (auto& [name, v] : rows) {
    v.resize(reports.size(), nullptr);
    const DatasetAudit* any = nullptr;
    for (auto* d : v) any = any ? any : d;
    absl::StrAppend(&md, "| ", name, " | ", AnswerFormatName(any->rule.format), " |");
    for (auto* d : v) {
      absl::StrAppend(&md, " ", d ? Percent(d->format_ok, d->format_checked) : "–", " |");
    }
    md += "\n";
  }
  md += DatasetTableMarkdown(reports);
  md += ConsensusMarkdown(ComputeConsensus(reports));
  return md;
}

}  // namespace medeval
