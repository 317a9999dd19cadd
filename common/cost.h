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

class CostMeter {
 public:
  explicit CostMeter(const v1::ModelPrice& price) : price_(price) {}
  void Add(const v1::AnswerRecord& record);
  // The manifest's "cost" object: prices, tokens online and batch, cost of
  // input, output and in total.
  nlohmann::ordered_json ToJson() const;
  double total() const;

 private:
  v1::ModelPrice price_;
  int64_t online_in_ = 0, online_out_ = 0, batch_in_ = 0, batch_out_ = 0;
};

// "0.0123" (4 significant decimals for small sums, 2 for large).
std::string FormatCost(double cost);

}  // namespace medeval

#endif  // MEDEVAL_COMMON_COST_H_
