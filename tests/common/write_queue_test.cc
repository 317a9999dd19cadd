#include "common/write_queue.h"

#include <gtest/gtest.h>

#include <vector>

#include "proto/medeval.pb.h"

namespace medeval {
namespace {

v1::WorkerMessage Released(uint64_t id) {
  v1::WorkerMessage m;
  m.add_released(id);
  return m;
}

std::vector<uint64_t> Ids(const v1::WorkerMessage& m) {
  return std::vector<uint64_t>(m.released().begin(), m.released().end());
}

TEST(WriteQueueTest, OneWriteInFlightTheRestMergesIntoTheNext) {
  WriteQueue<v1::WorkerMessage> q;
  EXPECT_EQ(q.Next(), nullptr);  // nothing queued
  q.Push(Released(1));
  v1::WorkerMessage* first = q.Next();
  ASSERT_NE(first, nullptr);
  EXPECT_TRUE(q.busy());
  EXPECT_EQ(Ids(*first), std::vector<uint64_t>{1});

  q.Push(Released(2));
  const v1::WorkerMessage three = Released(3);
  q.Push(three);  // the copying overload
  EXPECT_EQ(q.Next(), nullptr) << "a second write while one is in flight";
  // The message in flight is untouched by what queued behind it.
  EXPECT_EQ(Ids(*first), std::vector<uint64_t>{1});

  q.WriteDone(true);
  EXPECT_FALSE(q.busy());
  v1::WorkerMessage* second = q.Next();
  ASSERT_NE(second, nullptr);
  EXPECT_EQ(Ids(*second), (std::vector<uint64_t>{2, 3}));
  q.WriteDone(true);
  EXPECT_FALSE(q.has_pending());
  EXPECT_EQ(q.Next(), nullptr);
}

TEST(WriteQueueTest, AFailedWriteStopsTheWritesButKeepsWhatIsQueued) {
  WriteQueue<v1::WorkerMessage> q;
  q.Push(Released(1));
  ASSERT_NE(q.Next(), nullptr);
  q.Push(Released(2));
  q.WriteDone(false);
  EXPECT_TRUE(q.failed());
  EXPECT_FALSE(q.busy());
  EXPECT_TRUE(q.has_pending());
  EXPECT_EQ(q.Next(), nullptr);
}

TEST(WriteQueueTest, MarkBusyHoldsBackWritesUntilDone) {
  WriteQueue<v1::WorkerMessage> q;
  q.MarkBusy();  // e.g. WritesDone in flight
  q.Push(Released(1));
  EXPECT_EQ(q.Next(), nullptr);
  q.WriteDone(true);
  EXPECT_FALSE(q.failed());
  ASSERT_NE(q.Next(), nullptr);
}

TEST(WriteQueueTest, TheOwnersMergeDecidesHowMessagesCombine) {
  // A merge of its own (the coordinator moves repeated parts, say).
  WriteQueue<v1::WorkerMessage> q([](v1::WorkerMessage* src, v1::WorkerMessage* dst) {
    for (uint64_t id : src->released()) dst->add_released(id * 10);
  });
  q.Push(Released(1));  // the first message is taken as it is
  q.Push(Released(2));
  q.Push(Released(3));
  v1::WorkerMessage* out = q.Next();
  ASSERT_NE(out, nullptr);
  EXPECT_EQ(Ids(*out), (std::vector<uint64_t>{1, 20, 30}));
}

}  // namespace
}  // namespace medeval
