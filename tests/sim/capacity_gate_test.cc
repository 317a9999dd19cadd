#include "sim/capacity_gate.h"

#include <vector>

#include "gtest/gtest.h"

namespace medeval::sim {
namespace {

TEST(CapacityGateTest, AdmitsUpToCapacityThenQueuesInOrder) {
  CapacityGate gate(2);
  std::vector<int> granted;
  EXPECT_TRUE(gate.Acquire([&] { granted.push_back(0); }));
  EXPECT_TRUE(gate.Acquire([&] { granted.push_back(1); }));
  EXPECT_FALSE(gate.Acquire([&] { granted.push_back(2); }));
  EXPECT_FALSE(gate.Acquire([&] { granted.push_back(3); }));
  EXPECT_FALSE(gate.TryAcquire()) << "full: turned away, not queued";
  EXPECT_EQ(gate.waiting(), 2u);
  EXPECT_TRUE(granted.empty()) << "admitted callers are not called back";

  gate.Release();  // the slot passes to the first waiter
  EXPECT_EQ(granted, std::vector<int>({2}));
  gate.Release();
  EXPECT_EQ(granted, std::vector<int>({2, 3}));
  EXPECT_EQ(gate.waiting(), 0u);
  EXPECT_FALSE(gate.TryAcquire()) << "the waiters hold both slots now";
  gate.Release();
  EXPECT_TRUE(gate.TryAcquire());
}

TEST(CapacityGateTest, ZeroCapacityAdmitsEveryone) {
  CapacityGate gate(0);
  for (int i = 0; i < 1000; ++i) EXPECT_TRUE(gate.TryAcquire());
  EXPECT_TRUE(gate.Acquire([] { FAIL() << "never queued"; }));
  EXPECT_EQ(gate.waiting(), 0u);
}

}  // namespace
}  // namespace medeval::sim
