// Hashes that are stable across processes, builds and machines (unlike
// absl::Hash), for values that are compared between programs: the simulated
// server's deterministic answers and its per-question request keys.
//
// Thread-safe (pure functions).
#ifndef MEDEVAL_COMMON_STABLE_HASH_H_
#define MEDEVAL_COMMON_STABLE_HASH_H_

#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"

namespace medeval {

// FNV-1a 64 followed by a splitmix64 finalizer for good low bits.
uint64_t StableHash(absl::string_view data, uint64_t seed = 0);

// Combines values into one hash: StableHashOf({"model", "question"}, seed).
uint64_t StableHashOf(std::initializer_list<absl::string_view> parts, uint64_t seed = 0);

// A hash mapped to [0, 1).
double HashToUnit(uint64_t h);

// 16 lower-case hex digits.
std::string HashHex(uint64_t h);

}  // namespace medeval

#endif  // MEDEVAL_COMMON_STABLE_HASH_H_
