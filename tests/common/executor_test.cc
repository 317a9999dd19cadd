#include "common/executor.h"

#include <atomic>
#include <stdexcept>

#include "gtest/gtest.h"

namespace medeval {
namespace {

TEST(ExecutorTest, AThrowingTaskDoesNotStopThePoolOrTheProcess) {
  std::atomic<int> ran{0};
  {
    Executor ex(2);
    ex.Post([] { throw std::runtime_error("boom"); });
    ex.Post([] { throw 42; });
    for (int i = 0; i < 10; ++i) ex.Post([&] { ran.fetch_add(1); });
  }
  EXPECT_EQ(ran.load(), 10);
}

}  // namespace
}  // namespace medeval
