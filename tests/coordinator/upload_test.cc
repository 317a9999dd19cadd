// Submissions are all or nothing: hand-made Submit streams against a real
// coordinator on loopback (cut off, lying about sizes, damaged), and its
// shutdown with calls still open.
#include <future>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/file_util.h"
#include "common/sha256.h"
#include "gtest/gtest.h"
#include "tests/coordinator/live_coordinator.h"
#include "tests/testing/test_util.h"

namespace medeval {
namespace {

using testing::LiveCoordinator;
using Writer = grpc::ClientWriter<v1::SubmitChunk>;

v1::RunSpec Spec(const std::string& key) {
  v1::RunSpec spec;
  spec.set_model("m");
  spec.set_track("v4-llm");
  spec.set_idempotency_key(key);
  return spec;
}

class UploadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    testing::WriteSyntheticSuite(tmp_ / "suite", "D", 40);
    data_ = testing::ReadText(tmp_ / "suite/D.jsonl");
  }
  // The first message: spec and a manifest of D.jsonl as it is.
  v1::SubmitChunk First(const std::string& key, uint64_t size, const std::string& sha) {
    v1::SubmitChunk c;
    *c.mutable_spec() = Spec(key);
    v1::ManifestEntry* e = c.mutable_manifest()->add_files();
    e->set_path("D.jsonl");
    e->set_size(size);
    e->set_sha256(sha);
    return c;
  }
  v1::SubmitChunk Data(const std::string& bytes, bool header) {
    v1::SubmitChunk c;
    if (header) {
      c.mutable_file()->set_path("D.jsonl");
      c.mutable_file()->set_size(data_.size());
    }
    c.set_data(bytes);
    return c;
  }
  // Sends `chunks`, half-closes, and returns the call's status.
  grpc::Status Upload(const std::vector<v1::SubmitChunk>& chunks) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(15));
    v1::SubmitResponse resp;
    auto w = live_.stub()->Submit(&ctx, &resp);
    for (const auto& c : chunks) {
      if (!w->Write(c)) break;
    }
    w->WritesDone();
    return w->Finish();
  }
  std::string HalfAtALine() const {
    return data_.substr(0, data_.find('\n', data_.size() / 2) + 1);
  }

  testing::TempDir tmp_;
  LiveCoordinator live_{tmp_ / "state"};
  std::string data_;
};

TEST_F(UploadTest, ACancelledUploadCreatesNothingAndLeavesItsKeyFree) {
  {
    grpc::ClientContext ctx;
    v1::SubmitResponse resp;
    auto w = live_.stub()->Submit(&ctx, &resp);
    ASSERT_TRUE(w->Write(First("k", data_.size(), Sha256Hex(data_))));
    ASSERT_TRUE(w->Write(Data(HalfAtALine(), true)));  // whole lines: a valid suite
    absl::SleepFor(absl::Milliseconds(200));
    ctx.TryCancel();  // the client goes away (RST)
    EXPECT_EQ(w->Finish().error_code(), grpc::StatusCode::CANCELLED);
  }
  absl::SleepFor(absl::Seconds(1));  // time enough to create a run, were it to
  EXPECT_EQ(live_.RunCount(), 0);
  EXPECT_TRUE(live_.RunFolders().empty());
  // The retry with the same key is a new, complete run, not a resumed part.
  auto resp = live_.SubmitSynthetic(tmp_ / "suite", 40, "m", "k");
  ASSERT_TRUE(resp.ok()) << resp.status();
  EXPECT_FALSE(resp->resumed());
  EXPECT_EQ(live_.RunStatus(resp->run_id()).total(), 40u);
}

TEST_F(UploadTest, AnUploadEndingEarlyOrNotMatchingItsManifestCreatesNothing) {
  const std::string sha = Sha256Hex(data_);
  // Half-closed after part of the file.
  grpc::Status st = Upload({First("k1", data_.size(), sha), Data(HalfAtALine(), true)});
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << st.error_message();
  // The right size, other bytes.
  std::string other = data_;
  other[other.size() / 2] ^= 1;
  st = Upload({First("k2", data_.size(), sha), Data(other, true)});
  EXPECT_EQ(st.error_code(), grpc::StatusCode::DATA_LOSS) << st.error_message();
  // More than declared.
  st = Upload({First("k3", data_.size(), sha), Data(data_ + "x", true)});
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << st.error_message();
  // No manifest at all.
  v1::SubmitChunk bare;
  *bare.mutable_spec() = Spec("k4");
  st = Upload({bare, Data(data_, true)});
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << st.error_message();
  EXPECT_EQ(live_.RunCount(), 0);
  EXPECT_TRUE(live_.RunFolders().empty());
  // And the whole thing works.
  st = Upload({First("k5", data_.size(), sha), Data(data_, true)});
  EXPECT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(live_.RunCount(), 1);
}

TEST_F(UploadTest, DeclaredSizesAreCheckedBeforeAnythingIsTakenAndShutdownStillEnds) {
  const uint64_t huge = uint64_t{1} << 62;
  // A file header claiming 2^62 bytes (the old reserve() of it hung the call).
  v1::SubmitChunk spec_only;
  *spec_only.mutable_spec() = Spec("h1");
  v1::SubmitChunk header;
  header.mutable_file()->set_path("D.jsonl");
  header.mutable_file()->set_size(huge);
  header.set_data("x");
  grpc::Status st = Upload({spec_only, header});
  EXPECT_NE(st.error_code(), grpc::StatusCode::OK);
  EXPECT_NE(st.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED) << st.error_message();
  // A manifest claiming it.
  st = Upload({First("h2", huge, Sha256Hex(data_))});
  EXPECT_EQ(st.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << st.error_message();
  EXPECT_EQ(live_.RunCount(), 0);
  auto done = std::async(std::launch::async, [&] { live_.Shutdown(); });
  EXPECT_EQ(done.wait_for(std::chrono::seconds(20)), std::future_status::ready);
}

TEST_F(UploadTest, ShutdownEndsOpenCallsInBoundedTimeAndSaysWhatItDid) {
  // An upload that stops sending half-way, and a worker stream.
  grpc::ClientContext ctx;
  v1::SubmitResponse resp;
  auto w = live_.stub()->Submit(&ctx, &resp);
  ASSERT_TRUE(w->Write(First("k", data_.size(), Sha256Hex(data_))));
  ASSERT_TRUE(w->Write(Data(HalfAtALine(), true)));
  testing::RawWorker worker(live_.stub(), LiveCoordinator::Hello("w", "m", 1));
  v1::CoordinatorMessage welcome;
  ASSERT_TRUE(worker.Read(&welcome));
  ASSERT_TRUE(testing::WaitFor([&] {
    auto open = live_.coordinator().scheduler().Status("");
    return open.workers_size() == 1;
  }));

  ::testing::internal::CaptureStderr();
  const absl::Time start = absl::Now();
  auto done = std::async(std::launch::async, [&] { live_.Shutdown(); });
  const bool finished = done.wait_for(std::chrono::seconds(20)) == std::future_status::ready;
  const std::string log = ::testing::internal::GetCapturedStderr();
  ASSERT_TRUE(finished) << log;
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));
  EXPECT_NE(w->Finish().error_code(), grpc::StatusCode::OK);
  EXPECT_NE(worker.Finish().error_code(), grpc::StatusCode::OK);
  // Nothing created from the part received.
  EXPECT_TRUE(live_.RunFolders().empty());
  // What it did, in that order.
  const size_t a = log.find("shutting down: no new calls");
  const size_t b = log.find("1 worker streams, 1 uploads");
  const size_t c = log.find("gRPC server stopped");
  const size_t d = log.find("journal: every record appended before shutdown");
  const size_t e = log.find("coordinator stopped");
  ASSERT_NE(a, std::string::npos) << log;
  EXPECT_NE(b, std::string::npos) << log;
  ASSERT_NE(c, std::string::npos) << log;
  ASSERT_NE(d, std::string::npos) << log;
  ASSERT_NE(e, std::string::npos) << log;
  EXPECT_LT(a, c);
  EXPECT_LT(c, d);
  EXPECT_LT(d, e);
}

TEST_F(UploadTest, AFailedCreationLeavesNoRunBehind) {
  // A VLM suite whose report passes the suite's checks (it exists and looks
  // like a PDF) but cannot be rendered once the run folder is in place.
  const std::string root = tmp_ / "vlm";
  testing::WriteText(JoinPath(root, "MedOCR/broken.pdf"), "%PDF-1.4\nnot really a pdf\n");
  testing::WriteText(JoinPath(root, "MedOCR.jsonl"),
                     R"({"question": "识别报告中的实体。", "answer": "", "img_path": )"
                     R"("MedOCR/broken.pdf", "other": {"id": 1}})"
                     "\n");
  auto suite = LoadSuite(root, LoadOptions());
  ASSERT_TRUE(suite.ok()) << suite.status();
  v1::RunSpec spec = Spec("vlm");
  spec.set_track("v4-vlm");
  auto resp = live_.client().Submit(spec, *suite);
  ASSERT_FALSE(resp.ok());
  EXPECT_EQ(live_.RunCount(), 0);
  EXPECT_TRUE(live_.RunFolders().empty());
  live_.Restart();
  EXPECT_EQ(live_.RunCount(), 0);
  EXPECT_TRUE(live_.coordinator().recovery_errors().empty());
}

}  // namespace
}  // namespace medeval
