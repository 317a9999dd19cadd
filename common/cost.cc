#include "common/cost.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace medeval {

bool HasPrice(const v1::ModelPrice& p) {
  return p.input_per_million() > 0 || p.output_per_million() > 0;
}

void TokenTally::Add(const v1::AnswerRecord& r) { Add(TokensOf(r)); }

void TokenTally::Add(const TokenTally& o) {
  online_in += o.online_in;
  online_out += o.online_out;
  batch_in += o.batch_in;
  batch_out += o.batch_out;
}

TokenTally TokensOf(const v1::AnswerRecord& r) {
  const bool batch = std::find(r.flags().begin(), r.flags().end(), kFlagBatch) != r.flags().end();
  TokenTally t;
  (batch ? t.batch_in : t.online_in) = r.prompt_tokens();
  (batch ? t.batch_out : t.online_out) = r.completion_tokens();
  return t;
}

double CostMeter::InputCost() const {
  const double f = 1.0 - price_.batch_discount();
  return (static_cast<double>(tokens_.online_in) + f * static_cast<double>(tokens_.batch_in)) *
         price_.input_per_million() / 1e6;
}

double CostMeter::OutputCost() const {
  const double f = 1.0 - price_.batch_discount();
  return (static_cast<double>(tokens_.online_out) + f * static_cast<double>(tokens_.batch_out)) *
         price_.output_per_million() / 1e6;
}

double CostMeter::total() const { return InputCost() + OutputCost(); }

nlohmann::ordered_json CostMeter::ToJson() const { return CostJson(ToProto()); }

v1::RunCost CostMeter::ToProto() const {
  v1::RunCost c;
  c.set_price_input_per_million(price_.input_per_million());
  c.set_price_output_per_million(price_.output_per_million());
  c.set_batch_discount(price_.batch_discount());
  c.set_online_prompt_tokens(tokens_.online_in);
  c.set_online_completion_tokens(tokens_.online_out);
  c.set_batch_prompt_tokens(tokens_.batch_in);
  c.set_batch_completion_tokens(tokens_.batch_out);
  c.set_input(InputCost());
  c.set_output(OutputCost());
  c.set_total(InputCost() + OutputCost());
  return c;
}

std::string FormatCost(double cost) {
  return cost >= 100 ? absl::StrFormat("%.2f", cost) : absl::StrFormat("%.4f", cost);
}

std::string CostText(const v1::RunCost& c) {
  return absl::StrCat(FormatCost(c.total()), " (input ", FormatCost(c.input()), ", output ",
                      FormatCost(c.output()), "; tokens online ", c.online_prompt_tokens(),
                      " in / ", c.online_completion_tokens(), " out, batch ",
                      c.batch_prompt_tokens(), " in / ", c.batch_completion_tokens(), " out)");
}

nlohmann::ordered_json CostJson(const v1::RunCost& c) {
  nlohmann::ordered_json j;
  j["price_input_per_million"] = c.price_input_per_million();
  j["price_output_per_million"] = c.price_output_per_million();
  j["batch_discount"] = c.batch_discount();
  j["tokens"] = {{"online_prompt", c.online_prompt_tokens()},
                 {"online_completion", c.online_completion_tokens()},
                 {"batch_prompt", c.batch_prompt_tokens()},
                 {"batch_completion", c.batch_completion_tokens()}};
  j["input"] = c.input();
  j["output"] = c.output();
  j["total"] = c.total();
  return j;
}

v1::RunCost CostFromJson(const nlohmann::json& j) {
  v1::RunCost c;
  if (!j.is_object()) return c;
  c.set_price_input_per_million(j.value("price_input_per_million", 0.0));
  c.set_price_output_per_million(j.value("price_output_per_million", 0.0));
  c.set_batch_discount(j.value("batch_discount", 0.0));
  if (j.contains("tokens") && j["tokens"].is_object()) {
    const nlohmann::json& t = j["tokens"];
    c.set_online_prompt_tokens(t.value("online_prompt", int64_t{0}));
    c.set_online_completion_tokens(t.value("online_completion", int64_t{0}));
    c.set_batch_prompt_tokens(t.value("batch_prompt", int64_t{0}));
    c.set_batch_completion_tokens(t.value("batch_completion", int64_t{0}));
  }
  c.set_input(j.value("input", 0.0));
  c.set_output(j.value("output", 0.0));
  c.set_total(j.value("total", 0.0));
  return c;
}

}  // namespace medeval
