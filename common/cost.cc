#include "common/cost.h"

#include <algorithm>

#include "absl/strings/str_format.h"

namespace medeval {

bool HasPrice(const v1::ModelPrice& p) {
  return p.input_per_million() > 0 || p.output_per_million() > 0;
}

void CostMeter::Add(const v1::AnswerRecord& r) {
  const bool batch = std::find(r.flags().begin(), r.flags().end(), kFlagBatch) != r.flags().end();
  (batch ? batch_in_ : online_in_) += r.prompt_tokens();
  (batch ? batch_out_ : online_out_) += r.completion_tokens();
}

double CostMeter::total() const {
  const double f = 1.0 - price_.batch_discount();
  return (static_cast<double>(online_in_) + f * static_cast<double>(batch_in_)) *
             price_.input_per_million() / 1e6 +
         (static_cast<double>(online_out_) + f * static_cast<double>(batch_out_)) *
             price_.output_per_million() / 1e6;
}

nlohmann::ordered_json CostMeter::ToJson() const {
  const double f = 1.0 - price_.batch_discount();
  const double in = (static_cast<double>(online_in_) + f * static_cast<double>(batch_in_)) *
                    price_.input_per_million() / 1e6;
  const double out = (static_cast<double>(online_out_) + f * static_cast<double>(batch_out_)) *
                     price_.output_per_million() / 1e6;
  nlohmann::ordered_json j;
  j["price_input_per_million"] = price_.input_per_million();
  j["price_output_per_million"] = price_.output_per_million();
  j["batch_discount"] = price_.batch_discount();
  j["tokens"] = {{"online_prompt", online_in_},
                 {"online_completion", online_out_},
                 {"batch_prompt", batch_in_},
                 {"batch_completion", batch_out_}};
  j["input"] = in;
  j["output"] = out;
  j["total"] = in + out;
  return j;
}

std::string FormatCost(double cost) {
  return cost >= 100 ? absl::StrFormat("%.2f", cost) : absl::StrFormat("%.4f", cost);
}

}  // namespace medeval
