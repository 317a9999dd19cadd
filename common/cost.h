// What a run's tokens cost: prices per million input and output tokens, with
// the Batch API discount for answers that came from a batch (records flagged
// "batch"). Shared by the manifest writer, the run summary and `compare`.
//
// Thread-safety: CostMeter is not thread-safe (one per merge); the free
// functions are pure.
#ifndef MEDEVAL_COMMON_COST_H_
#define MEDEVAL_COMMON_COST_H_

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "proto/medeval.pb.h"

namespace medeval {

// The flag on an answer record that came from a Batch API.
inline constexpr char kFlagBatch[] = "batch";

// Whether `price` sets any price.
bool HasPrice(const v1::ModelPrice& price);

// Tokens of answer records, online and from batches: what a price applies to.
struct TokenTally {
  int64_t online_in = 0, online_out = 0, batch_in = 0, batch_out = 0;
  void Add(const v1::AnswerRecord& record);
  void Add(const TokenTally& other);
};

// The tokens of one record (for a tally kept apart from the record).
TokenTally TokensOf(const v1::AnswerRecord& record);

class CostMeter {
 public:
  explicit CostMeter(const v1::ModelPrice& price, TokenTally tokens = {})
      : price_(price), tokens_(tokens) {}
  void Add(const v1::AnswerRecord& record) { tokens_.Add(record); }
  // The manifest's "cost" object: prices, tokens online and batch, cost of
  // input, output and in total.
  nlohmann::ordered_json ToJson() const;
  // The same, as `medeval status` carries it.
  v1::RunCost ToProto() const;
  double total() const;

 private:
  double InputCost() const;
  double OutputCost() const;

  v1::ModelPrice price_;
  TokenTally tokens_;
};

// "0.0123" (4 significant decimals for small sums, 2 for large).
std::string FormatCost(double cost);

// "0.0104 (input 0.0083, output 0.0022; tokens online 1695 in / 76 out,
// batch 4862 in / 390 out)": the summary's and `medeval status`'s cost line.
std::string CostText(const v1::RunCost& cost);
// The manifest's "cost" object: a run's cost as JSON, and read back.
nlohmann::ordered_json CostJson(const v1::RunCost& cost);
v1::RunCost CostFromJson(const nlohmann::json& cost);

}  // namespace medeval

#endif  // MEDEVAL_COMMON_COST_H_
