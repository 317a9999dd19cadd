// Batch API runs seen from the outside of a distributed setup: the state and
// counts of each batch, its wait and window, and the run's cost so far, as
// `medeval status` (gRPC), its JSON and the coordinator's metrics show them;
// and a worker's local model server that comes back on another port.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <memory>
#include <nlohmann/json.hpp>
#include <regex>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/cost.h"
#include "gtest/gtest.h"
#include "sim/sim_server.h"
#include "tests/integration/cluster.h"
#include "tests/integration/output_checks.h"
#include "tests/testing/test_util.h"

namespace medeval {
namespace {

using json = nlohmann::json;
using testing::PromValue;

class BatchClusterTest : public ::testing::Test {
 protected:
  std::string Submit(std::vector<std::string> more = {}) {
    std::vector<std::string> args = {"submit", "--data", tmp_ / "suite", "--model", "m1"};
    args.insert(args.end(), more.begin(), more.end());
    std::string out, err;
    EXPECT_EQ(cluster_.Cli(args, &out, &err), 0) << err;
    return std::string(absl::StripAsciiWhitespace(out));
  }
  v1::RunStatus RunAt(const std::string& run) {
    auto st = cluster_.client().Status(run);
    return st.ok() && st->runs_size() == 1 ? st->runs(0) : v1::RunStatus();
  }

  testing::TempDir tmp_;
  testing::Cluster cluster_{tmp_.path()};
};

TEST_F(BatchClusterTest, StatusShowsEachBatchsStateCountsWaitAndTheCostSoFar) {
  const int n = 24;
  testing::WriteSyntheticSuite(tmp_ / "suite", "MedHC", n);
  sim::SimOptions so;
  so.batch.validate_ms = 1500;  // long enough to be seen
  so.batch.lines_per_s = 4;     // 6 s in progress
  so.batch.finalize_ms = 300;
  sim::SimServer sim(so);
  ASSERT_TRUE(sim.Start().ok());
  const int mport = testing::FreePort();
  cluster_.StartCoordinator({"--metrics-listen", absl::StrCat("127.0.0.1:", mport)});
  cluster_.StartWorker(
      "w1", {"--model", "m1", "--base-url", absl::StrCat("http://127.0.0.1:", sim.port(), "/v1"),
             "--batch", "--batch-poll", "0.2", "--batch-linger", "0.3", "--batch-state-dir",
             tmp_ / "batches"});
  const std::string run = Submit({"--price-input", "2", "--price-output", "8"});

  // Validating, then in progress with some lines done and some not.
  ASSERT_TRUE(testing::WaitFor([&] {
    v1::RunStatus r = RunAt(run);
    return r.batches_size() == 1 && r.batches(0).status() == "validating";
  })) << cluster_.worker("w1").err();
  v1::RunStatus mid;
  ASSERT_TRUE(testing::WaitFor([&] {
    mid = RunAt(run);
    return mid.batches_size() == 1 && mid.batches(0).status() == "in_progress" &&
           mid.batches(0).completed() >= 4 && mid.batches(0).completed() < n - 6;
  })) << mid.DebugString();
  const v1::BatchState& b = mid.batches(0);
  EXPECT_EQ(b.total(), static_cast<uint64_t>(n));
  EXPECT_EQ(b.run_id(), run);
  EXPECT_TRUE(absl::StartsWith(b.batch_id(), "batch_")) << b.batch_id();
  EXPECT_GT(b.created_unix_ms(), 0);
  EXPECT_NEAR(b.expires_unix_ms() - b.created_unix_ms(), 24 * 3600 * 1000, 2000);

  // The same through the command line, as text and JSON.
  std::string out, err;
  ASSERT_EQ(cluster_.Cli({"status", run}, &out, &err), 0) << err;
  EXPECT_TRUE(std::regex_search(
      out, std::regex(b.batch_id() + ": in_progress [0-9]+/24, waited [0-9]+s of the 24h window")))
      << out;
  EXPECT_TRUE(absl::StrContains(out, "cost so far ")) << out;
  ASSERT_EQ(cluster_.Cli({"status", "--json"}, &out, &err), 0) << err;
  json j = json::parse(out);
  ASSERT_EQ(j["runs"].size(), 1u) << out;
  EXPECT_EQ(j["runs"][0]["batches"][0]["status"], "in_progress") << out;
  EXPECT_EQ(j["runs"][0]["batches"][0]["total"], n) << out;

  // The metrics: one batch in progress, its requests.
  const std::string metrics =
      testing::HttpCall("GET", absl::StrCat("http://127.0.0.1:", mport, "/metrics")).body;
  EXPECT_EQ(PromValue(metrics, "medeval_batches", {{"run", run}, {"state", "in_progress"}}), 1)
      << metrics;
  EXPECT_EQ(PromValue(metrics, "medeval_batch_requests", {{"run", run}, {"state", "total"}}), n)
      << metrics;
  EXPECT_GE(PromValue(metrics, "medeval_batch_requests", {{"run", run}, {"state", "completed"}})
                .value_or(-1),
            4)
      << metrics;

  ASSERT_TRUE(cluster_.WaitRunFinished(run, absl::Seconds(60)));
  v1::RunStatus done = RunAt(run);
  ASSERT_EQ(done.batches_size(), 1);
  EXPECT_EQ(done.batches(0).status(), "completed");
  EXPECT_EQ(done.batches(0).completed(), static_cast<uint64_t>(n));
  // The cost so far is the manifest's, from the same tokens.
  ASSERT_TRUE(done.has_cost());
  ASSERT_EQ(cluster_.Cli({"fetch", run, "--out", tmp_ / "out"}, &out, &err), 0) << err;
  json m = json::parse(testing::ReadText(tmp_ / "out/m1/manifest.json"));
  EXPECT_GT(done.cost().total(), 0);
  EXPECT_DOUBLE_EQ(done.cost().total(), m["cost"]["total"].get<double>());
  EXPECT_EQ(done.cost().batch_prompt_tokens(), m["cost"]["tokens"]["batch_prompt"]);
  EXPECT_EQ(done.cost().batch_completion_tokens(), m["cost"]["tokens"]["batch_completion"]);
  json stats = json::parse(sim.StatsJson());
  EXPECT_EQ(done.cost().batch_prompt_tokens(), stats["batch"]["tokens"]["prompt"]);
}

// Listens on 127.0.0.1:`port` and closes every connection at once: the port
// is taken, and nothing there is a model server.
class PortSquatter {
 public:
  explicit PortSquatter(int port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const int one = 1;
    ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<uint16_t>(port));
    ok_ = ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
          ::listen(fd_, 64) == 0;
    if (ok_) {
      thread_ = std::thread([this] {
        while (true) {
          const int c = ::accept(fd_, nullptr, nullptr);
          if (c < 0) return;  // shut down
          ++accepted_;
          ::close(c);
        }
      });
    }
  }
  ~PortSquatter() {
    ::shutdown(fd_, SHUT_RDWR);  // wakes accept
    if (thread_.joinable()) thread_.join();
    ::close(fd_);
  }
  PortSquatter(const PortSquatter&) = delete;
  PortSquatter& operator=(const PortSquatter&) = delete;
  bool ok() const { return ok_; }

 private:
  int fd_ = -1;
  bool ok_ = false;
  std::atomic<int> accepted_{0};
  std::thread thread_;
};

TEST_F(BatchClusterTest, ALocalServerBackOnANewPortGetsTheBatchCallsToo) {
  const int n = 20;
  testing::WriteSyntheticSuite(tmp_ / "suite", "MedHC", n);
  cluster_.StartCoordinator();
  cluster_.StartWorker("served",
                       {"--model", "m1", "--batch", "--batch-poll", "0.2", "--batch-linger", "0.3",
                        "--batch-state-dir", tmp_ / "batches", "--serve",
                        absl::StrCat(testing::MedevalBinary(), " sim --listen 127.0.0.1:{port} ",
                                     "--batch-lines-per-s 2 --batch-validate-ms 0")});
  // "started the model server (pid P, port N)"
  const std::regex started("started the model server \\(pid ([0-9]+), port ([0-9]+)\\)");
  std::smatch m;
  std::string log;
  ASSERT_TRUE(testing::WaitFor([&] {
    log = cluster_.worker("served").err();
    return std::regex_search(log, m, started);
  })) << log;
  const int pid = std::stoi(m[1]), port = std::stoi(m[2]);
  const std::string run = Submit();
  ASSERT_TRUE(testing::WaitFor([&] {
    v1::RunStatus r = RunAt(run);
    return r.batches_size() == 1 && r.batches(0).status() == "in_progress";
  })) << cluster_.worker("served").err();

  // The server dies with its batch, and its port is taken meanwhile: it
  // comes back elsewhere, and the old address answers nothing at all.
  ASSERT_EQ(::kill(-pid, SIGKILL), 0);
  std::unique_ptr<PortSquatter> squatter;
  ASSERT_TRUE(testing::WaitFor([&] {  // once the dead server's socket is gone
    squatter = std::make_unique<PortSquatter>(port);
    return squatter->ok();
  }));
  ASSERT_TRUE(cluster_.WaitRunFinished(run, absl::Seconds(90))) << cluster_.worker("served").err();
  log = cluster_.worker("served").err();
  EXPECT_TRUE(absl::StrContains(log, absl::StrCat("port ", port, " is taken now"))) << log;
  EXPECT_TRUE(absl::StrContains(log, "is unknown to the endpoint")) << log;
  v1::RunStatus done = RunAt(run);
  EXPECT_EQ(done.answered(), static_cast<uint64_t>(n));
  ASSERT_EQ(done.batches_size(), 1);
  EXPECT_EQ(done.batches(0).status(), "lost");
  std::string out, err;
  ASSERT_EQ(cluster_.Cli({"fetch", run, "--out", tmp_ / "out"}, &out, &err), 0) << err;
  CheckRunOutputs(tmp_ / "suite", tmp_ / "out/m1", "m1", sim::AnswerStyle());
  cluster_.worker("served").Kill(SIGTERM);
  EXPECT_EQ(cluster_.worker("served").Wait(absl::Seconds(60)), 0);
}

}  // namespace
}  // namespace medeval
