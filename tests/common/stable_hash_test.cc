#include "common/stable_hash.h"

#include "gtest/gtest.h"

namespace medeval {
namespace {

// The simulated server's answers are published and recomputed elsewhere, so
// these values must never change (they match an independent implementation
// of FNV-1a + splitmix64).
TEST(StableHashTest, ValuesAreFixedForever) {
  EXPECT_EQ(HashHex(StableHash("")), HashHex(StableHash("", 0)));
  EXPECT_EQ(HashHex(StableHash("medbench")), "87bd0d7a04530cf3");
  EXPECT_EQ(HashHex(StableHashOf({"model", "question"}, 7)), "8780d67083a9e3aa");
  EXPECT_NE(StableHashOf({"ab", "c"}), StableHashOf({"a", "bc"}));
}

TEST(StableHashTest, UnitIntervalIsHalfOpen) {
  for (uint64_t h : {uint64_t{0}, ~uint64_t{0}, uint64_t{12345}}) {
    double u = HashToUnit(h);
    EXPECT_GE(u, 0.0);
    EXPECT_LT(u, 1.0);
  }
}

}  // namespace
}  // namespace medeval
