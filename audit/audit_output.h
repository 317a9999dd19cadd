// The audit's outputs: a table for people and audit.json for machines.
//
// Thread-safety: pure functions.
#ifndef MEDEVAL_AUDIT_AUDIT_OUTPUT_H_
#define MEDEVAL_AUDIT_AUDIT_OUTPUT_H_

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "audit/auditor.h"

namespace medeval {

// Per dataset and a total row; problems listed below, the first few per dataset.
std::string AuditTable(const AuditReport& report, size_t problems_per_dataset = 5);

// Counts exact; problems listed up to `max_problems` per dataset.
nlohmann::ordered_json AuditJson(const AuditReport& report, bool strict,
                                 size_t max_problems = 1000);

// "12/30" or "-" when nothing applies.
std::string Fraction(int64_t part, int64_t whole);

}  // namespace medeval

#endif  // MEDEVAL_AUDIT_AUDIT_OUTPUT_H_
