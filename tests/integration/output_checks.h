// Checks a model's output folder against its suite and the simulated model:
// every input line in place and order, every field but "answer" unchanged,
// each answer what the simulator answers for that question, the upload zip
// holding exactly the submission folder, records and manifest consistent.
#ifndef MEDEVAL_TESTS_INTEGRATION_OUTPUT_CHECKS_H_
#define MEDEVAL_TESTS_INTEGRATION_OUTPUT_CHECKS_H_

#include <string>

#include "sim/answer_model.h"

namespace medeval {

// Adds gtest failures for whatever does not hold.
void CheckRunOutputs(const std::string& data_dir, const std::string& model_dir,
                     const std::string& model, const sim::AnswerStyle& style);

}  // namespace medeval

#endif  // MEDEVAL_TESTS_INTEGRATION_OUTPUT_CHECKS_H_
