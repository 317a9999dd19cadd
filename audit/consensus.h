// Consensus without gold answers: MedBench publishes none, but with several
// models the choice questions carry signal.
//
// For every choice dataset an item is a question (all shuffles of one id
// together). Choices are compared by option text, so shuffled letters agree.
//
//   consensus option   the plurality choice of all models on the item, each
//                      model weighing 1 however many shuffles it answered
//                      (its shuffles split that weight); none on a tie.
//   agreement          per model, the share of its answers (unreadable and
//                      missing ones included, as wrong) that match the
//                      consensus of the *other* models, over the items where
//                      the others have one.
//   estimated accuracy a one-coin Dawid-Skene model (Dawid & Skene 1979 with
//                      one accuracy p per model and wrong answers spread
//                      evenly over the item's other options) fitted by EM on
//                      all models' readable choices; a model's estimate is the
//                      mean posterior probability that its answer is right,
//                      unreadable and missing answers counting 0.
//
// Estimates need at least kMinConsensusModels models; below that nothing is
// computed.
//
// Thread-safety: pure functions.
#ifndef MEDEVAL_AUDIT_CONSENSUS_H_
#define MEDEVAL_AUDIT_CONSENSUS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "audit/auditor.h"

namespace medeval {

inline constexpr int kMinConsensusModels = 3;

// The abstract problem: items with a number of options each, and every
// model's votes per item (option index, or -1 for an answer that names no
// option or is missing).
struct VoteTable {
  std::vector<int> options;                          // per item, >= 2
  std::vector<std::vector<std::vector<int>>> votes;  // [model][item] -> votes
};

struct ConsensusFit {
  std::vector<int> consensus;  // per item: option index, -1 none (tie or no votes)
  // Per model.
  std::vector<int64_t> answers;            // votes on items where the others agree on one option
  std::vector<int64_t> agree;              // ... that match the others' consensus
  std::vector<double> agreement;           // agree / answers, -1 when answers == 0
  std::vector<double> p;                   // fitted one-coin accuracy on readable votes
  std::vector<double> estimated_accuracy;  // -1 when the model has no votes
  std::vector<int64_t> votes;              // all votes, readable or not
  std::vector<double> expected_correct;    // sum of posteriors of its votes
  int iterations = 0;
};

ConsensusFit FitConsensus(const VoteTable& table);

struct ModelConsensus {
  std::string model;
  int64_t answers = 0, agree = 0;
  int64_t votes = 0;
  double expected_correct = 0;
  double agreement() const { return answers > 0 ? double(agree) / double(answers) : -1; }
  double estimated_accuracy() const { return votes > 0 ? expected_correct / double(votes) : -1; }
};

struct DatasetConsensus {
  std::string dataset;
  int64_t items = 0;
  int64_t items_with_consensus = 0;
  std::vector<ModelConsensus> models;  // in report order
};

struct ConsensusReport {
  int models = 0;
  bool computed = false;  // false below kMinConsensusModels
  std::vector<DatasetConsensus> datasets;
  std::vector<ModelConsensus> overall;  // summed over the datasets
  // Per dataset and item key (AnsweredLine.line of the item's first line),
  // the consensus option's text: for the question browser.
  std::vector<std::vector<std::pair<uint32_t, std::string>>> consensus_text;
};

// Over the choice datasets the reports share (by name).
ConsensusReport ComputeConsensus(const std::vector<AuditReport>& reports);

}  // namespace medeval

#endif  // MEDEVAL_AUDIT_CONSENSUS_H_
