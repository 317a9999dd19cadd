#include "audit/leaderboard.h"

#include <algorithm>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/file_util.h"
#include "common/suite.h"

namespace medeval {

const std::vector<Dimension>& V4Dimensions() {
  static const auto* dims = new std::vector<Dimension>{
      {"knowledge QA",
       {"MedExam", "MedHC", "MedMC", "MedSpeQA", "MedRehab", "MedPsychQA", "MedRxPlan",
        "MedPsychCare", "MedLitQA", "MedHG"}},
      {"language understanding",
       {"SMDoc", "MedRxCheck", "MedInsureCalc", "MedInsureCheck", "MedChartQC", "MedPathQC",
        "MedTerm", "MedSynonym", "MedReportQC"}},
      {"language generation",
       {"MedRecordGen", "MedSummary", "MedExplain", "MedPopular", "MedTeach"}},
      {"complex reasoning",
       {"CMB-Clin-extended", "MedDiag", "MedCare", "MedAnalysis", "MedPHM", "MedTreat",
        "MedPrimary", "MedDiffer", "DDx-advanced", "MedOutcome"}},
      {"safety & ethics", {"MedSafety", "MedEthics"}},
  };
  return *dims;
}

std::string TaskOf(const std::string& dataset) {
  if (absl::StartsWith(dataset, "MedRxCheck")) return "MedRxCheck";
  return dataset;
}

std::vector<std::string> SplitCsvLine(const std::string& line) {
  std::vector<std::string> out;
  std::string cur;
  bool quoted = false;
  for (size_t i = 0; i < line.size(); ++i) {
    char c = line[i];
    if (quoted) {
      if (c == '"' && i + 1 < line.size() && line[i + 1] == '"') {
        cur.push_back('"');
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        cur.push_back(c);
      }
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      out.push_back(std::string(absl::StripAsciiWhitespace(cur)));
      cur.clear();
    } else {
      cur.push_back(c);
    }
  }
  out.push_back(std::string(absl::StripAsciiWhitespace(cur)));
  return out;
}

absl::StatusOr<Scores> ParseScoresCsv(const std::string& text, const std::string& path) {
  std::vector<absl::string_view> lines = SplitLines(text);
  size_t first = 0;
  while (first < lines.size() && IsBlankLine(lines[first])) ++first;
  if (first == lines.size()) return absl::InvalidArgumentError(absl::StrCat(path, ": empty"));
  std::string header_line(lines[first]);
  if (absl::StartsWith(header_line, "\xEF\xBB\xBF")) header_line.erase(0, 3);  // BOM
  std::vector<std::string> header = SplitCsvLine(header_line);
  auto col = [&](const char* name) -> int {
    for (size_t i = 0; i < header.size(); ++i) {
      if (absl::AsciiStrToLower(header[i]) == name) return static_cast<int>(i);
    }
    return -1;
  };
  const int model_col = col("model"), task_col = col("task"), score_col = col("score");
  if (model_col < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ":", first + 1,
        ": the header needs a 'model' column (long form: model,task,score; wide form: model "
        "then one column per task)"));
  }
  std::set<std::string> known;
  for (const auto& d : V4Dimensions()) known.insert(d.tasks.begin(), d.tasks.end());
  // model -> task -> (sum, count): MedRxCheck parts are averaged.
  std::map<std::string, std::map<std::string, std::pair<double, int>>> acc;
  std::set<std::string> unknown;
  auto add = [&](size_t lineno, const std::string& model, const std::string& task_name,
                 const std::string& value) -> absl::Status {
    if (value.empty()) return absl::OkStatus();
    double v = 0;
    if (!absl::SimpleAtod(value, &v)) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ":", lineno, ": score '", value, "' is not a number"));
    }
    const std::string task = TaskOf(task_name);
    if (!known.count(task)) {
      unknown.insert(task_name);
      return absl::OkStatus();
    }
    auto& slot = acc[model][task];
    slot.first += v;
    slot.second += 1;
    return absl::OkStatus();
  };
  for (size_t i = first + 1; i < lines.size(); ++i) {
    if (IsBlankLine(lines[i])) continue;
    std::vector<std::string> f = SplitCsvLine(std::string(lines[i]));
    if (f.size() != header.size()) {
      return absl::InvalidArgumentError(absl::StrCat(
          path, ":", i + 1, ": ", f.size(), " fields where the header has ", header.size()));
    }
    const std::string& model = f[static_cast<size_t>(model_col)];
    if (model.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(path, ":", i + 1, ": no model name"));
    }
    absl::Status st;
    if (task_col >= 0 && score_col >= 0) {
      st = add(i + 1, model, f[static_cast<size_t>(task_col)], f[static_cast<size_t>(score_col)]);
    } else {
      for (size_t c = 0; c < f.size() && st.ok(); ++c) {
        if (static_cast<int>(c) != model_col) st = add(i + 1, model, header[c], f[c]);
      }
    }
    if (!st.ok()) return st;
  }
  Scores s;
  for (auto& [model, tasks] : acc) {
    for (auto& [task, sc] : tasks) s.by_model[model][task] = sc.first / sc.second;
  }
  if (!unknown.empty()) {
    s.notes.push_back(absl::StrCat("not v4 tasks, left out: ", absl::StrJoin(unknown, ", ")));
  }
  return s;
}

std::vector<LeaderboardRow> Leaderboard(const Scores& scores) {
  std::vector<LeaderboardRow> rows;
  for (const auto& [model, tasks] : scores.by_model) {
    LeaderboardRow row;
    row.model = model;
    bool all = true;
    double total = 0;
    for (const Dimension& d : V4Dimensions()) {
      double sum = 0;
      int n = 0;
      for (const std::string& t : d.tasks) {
        auto it = tasks.find(t);
        if (it == tasks.end()) {
          row.missing_tasks.push_back(t);
        } else {
          sum += it->second;
          ++n;
        }
      }
      if (n > 0 && n == static_cast<int>(d.tasks.size())) {
        row.dimensions.push_back(sum / n);
        total += sum / n;
      } else {
        row.dimensions.push_back(std::nullopt);
        all = false;
      }
    }
    if (all) row.overall = total / static_cast<double>(V4Dimensions().size());
    rows.push_back(std::move(row));
  }
  std::stable_sort(rows.begin(), rows.end(), [](const LeaderboardRow& a, const LeaderboardRow& b) {
    if (a.overall.has_value() != b.overall.has_value()) return a.overall.has_value();
    return a.overall.value_or(0) > b.overall.value_or(0);
  });
  return rows;
}

}  // namespace medeval
