// The MedBench v4 leaderboard as the platform computes it from task scores:
// a dimension's score is the plain mean of its tasks' scores, the overall
// score the plain mean of the five dimensions. The task -> dimension table is
// data (documented in the README).
//
// Thread-safety: immutable data and pure functions.
#ifndef MEDEVAL_AUDIT_LEADERBOARD_H_
#define MEDEVAL_AUDIT_LEADERBOARD_H_

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace medeval {

struct Dimension {
  std::string name;
  std::vector<std::string> tasks;
};

const std::vector<Dimension>& V4Dimensions();

// The task a dataset belongs to: the three MedRxCheck files are one task.
std::string TaskOf(const std::string& dataset);

struct Scores {
  // model -> task -> score
  std::map<std::string, std::map<std::string, double>> by_model;
  std::vector<std::string> notes;  // e.g. tasks that are not v4 tasks
};

// CSV, either long (columns model, task, score in any order) or wide (first
// column model, then one column per task). Dataset names are mapped to tasks
// (MedRxCheck_SCQ -> MedRxCheck, averaged). Errors name the file and line.
absl::StatusOr<Scores> ParseScoresCsv(const std::string& text, const std::string& path);

struct LeaderboardRow {
  std::string model;
  std::vector<std::optional<double>> dimensions;  // in V4Dimensions() order
  std::optional<double> overall;                  // only with all five dimensions
  std::vector<std::string> missing_tasks;         // tasks without a score
};

// Rows sorted by overall score (best first; models without one last).
std::vector<LeaderboardRow> Leaderboard(const Scores& scores);

// One CSV line split into fields ("" quotes, "" escapes).
std::vector<std::string> SplitCsvLine(const std::string& line);

}  // namespace medeval

#endif  // MEDEVAL_AUDIT_LEADERBOARD_H_
