// TLS, mutual TLS and the shared token on every gRPC connection, with real
// certificates made by openssl; and the model API key never leaving the
// worker.
#include <cstdlib>
#include <filesystem>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "common/file_util.h"
#include "gtest/gtest.h"
#include "sim/sim_server.h"
#include "tests/integration/cluster.h"
#include "tests/integration/output_checks.h"
#include "tests/testing/test_util.h"

namespace medeval {
namespace {

// A CA, a server certificate for 127.0.0.1, a client certificate, and a
// client certificate from another CA.
bool MakePki(const std::string& dir) {
  const std::string script = absl::StrCat(R"(set -e
cd ")",
                                          dir, R"("
key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
ca() { key $1.key; openssl req -x509 -new -key $1.key -out $1.crt -days 2 -subj "/CN=$1" 2>/dev/null; }
cert() {  # name ca san
  key $1.key
  openssl req -new -key $1.key -out $1.csr -subj "/CN=$1" 2>/dev/null
  printf "subjectAltName=%s\n" "$3" > $1.ext
  openssl x509 -req -in $1.csr -CA $2.crt -CAkey $2.key -CAcreateserial -out $1.crt -days 2 \
    -extfile $1.ext 2>/dev/null
}
ca ca; ca rogue
cert server ca "IP:127.0.0.1,DNS:localhost"
cert client ca "DNS:worker"
cert intruder rogue "DNS:intruder"
)");
  testing::WriteText(JoinPath(dir, "pki.sh"), script);
  return std::system(absl::StrCat("bash ", JoinPath(dir, "pki.sh")).c_str()) == 0;
}

class SecurityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (std::system("command -v openssl >/dev/null") != 0) GTEST_SKIP() << "openssl is absent";
    ASSERT_TRUE(MakePki(tmp_.path()));
    testing::WriteText(tmp_ / "token", "s3cret-token\n");
    testing::WriteText(tmp_ / "wrong-token", "guess\n");
  }
  int Status(std::vector<std::string> extra) {
    std::vector<std::string> args = {"status"};
    args.insert(args.end(), extra.begin(), extra.end());
    return cluster_.Cli(args, &out_, &err_);
  }
  testing::TempDir tmp_;
  testing::Cluster cluster_{tmp_.path()};
  std::string out_, err_;
};

TEST_F(SecurityTest, TokenIsRequiredAndChecked) {
  cluster_.StartCoordinator({"--token-file", tmp_ / "token"});
  EXPECT_EQ(Status({}), 1);
  EXPECT_TRUE(absl::StrContains(err_, "requires a token")) << err_;
  EXPECT_EQ(Status({"--token-file", tmp_ / "wrong-token"}), 1);
  EXPECT_TRUE(absl::StrContains(err_, "token was refused")) << err_;
  EXPECT_EQ(Status({"--token-file", tmp_ / "token"}), 0) << err_;

  cluster_.StartWorker("w", {"--model", "m", "--base-url", "http://127.0.0.1:1/v1", "--token-file",
                             tmp_ / "wrong-token"});
  EXPECT_EQ(cluster_.worker("w").Wait(absl::Seconds(20)), 1);
  EXPECT_TRUE(absl::StrContains(cluster_.worker("w").err(), "refused this worker"))
      << cluster_.worker("w").err();
}

// Waiting is for a coordinator that is not up yet; one that answers "wrong
// token" is up, and waiting longer would not change its answer.
TEST_F(SecurityTest, AWrongTokenEndsTheWaitForTheCoordinatorAtOnce) {
  cluster_.StartCoordinator({"--token-file", tmp_ / "token"});
  const absl::Time start = absl::Now();
  EXPECT_EQ(cluster_.Cli({"submit", "--data", testing::SamplesDir(), "--model", "m", "--token-file",
                          tmp_ / "wrong-token", "--wait-for-coordinator", "5m"},
                         &out_, &err_),
            1);
  EXPECT_LT(absl::Now() - start, absl::Minutes(2)) << err_;
  EXPECT_TRUE(absl::StrContains(err_, "token was refused")) << err_;
  EXPECT_FALSE(absl::StrContains(err_, "waiting for the coordinator")) << err_;
  EXPECT_EQ(out_, "");
}

// A certificate the client does not trust, a server name the certificate
// does not carry, or TLS against a plaintext port stays wrong however long
// the client waits: `submit --wait-for-coordinator` says so at once.
TEST_F(SecurityTest, ATlsMismatchEndsTheWaitForTheCoordinatorAtOnce) {
  cluster_.StartCoordinator({"--tls-cert", tmp_ / "server.crt", "--tls-key", tmp_ / "server.key"});
  struct Case {
    std::vector<std::string> flags;
    std::string says;
  };
  const std::vector<Case> cases = {
      {{"--tls-ca", tmp_ / "rogue.crt"}, "not signed by a CA in --tls-ca"},
      {{"--tls-ca", tmp_ / "ca.crt", "--tls-server-name", "elsewhere.example"},
       "does not name elsewhere.example"},
  };
  for (const Case& c : cases) {
    std::vector<std::string> args = {
        "submit", "--data", testing::SamplesDir(), "--model", "m", "--wait-for-coordinator", "5m"};
    args.insert(args.end(), c.flags.begin(), c.flags.end());
    EXPECT_EQ(cluster_.Cli(args, &out_, &err_), 1) << err_;
    EXPECT_TRUE(absl::StrContains(err_, c.says)) << err_;
    EXPECT_FALSE(absl::StrContains(err_, "waiting for the coordinator")) << err_;
    EXPECT_EQ(out_, "");
    // `status` explains it the same way.
    EXPECT_EQ(Status(c.flags), 1);
    EXPECT_TRUE(absl::StrContains(err_, c.says)) << err_;
  }
  // A worker's first connection too: it stops and says why.
  cluster_.StartWorker(
      "w", {"--model", "m", "--base-url", "http://127.0.0.1:1/v1", "--tls-ca", tmp_ / "rogue.crt"});
  EXPECT_EQ(cluster_.worker("w").Wait(absl::Seconds(60)), 1);
  EXPECT_TRUE(absl::StrContains(cluster_.worker("w").err(), "not signed by a CA in --tls-ca"))
      << cluster_.worker("w").err();
  // TLS against a plaintext coordinator.
  ASSERT_TRUE(MakeDirs(tmp_ / "plain").ok());
  testing::Cluster plain(tmp_ / "plain");
  plain.StartCoordinator();
  EXPECT_EQ(plain.Cli({"submit", "--data", testing::SamplesDir(), "--model", "m",
                       "--wait-for-coordinator", "5m", "--tls-ca", tmp_ / "ca.crt"},
                      &out_, &err_),
            1);
  EXPECT_TRUE(absl::StrContains(err_, "does not speak TLS")) << err_;
  EXPECT_FALSE(absl::StrContains(err_, "waiting for the coordinator")) << err_;
}

TEST_F(SecurityTest, TlsEndToEnd) {
  sim::SimServer sim((sim::SimOptions()));
  ASSERT_TRUE(sim.Start().ok());
  cluster_.StartCoordinator({"--tls-cert", tmp_ / "server.crt", "--tls-key", tmp_ / "server.key"});
  EXPECT_EQ(Status({}), 1);                                // plaintext to a TLS port
  EXPECT_EQ(Status({"--tls-ca", tmp_ / "rogue.crt"}), 1);  // certificate not trusted
  EXPECT_EQ(Status({"--tls-ca", tmp_ / "ca.crt"}), 0) << err_;
  cluster_.StartWorker(
      "w", {"--model", "m", "--base-url", absl::StrCat("http://127.0.0.1:", sim.port(), "/v1"),
            "--tls-ca", tmp_ / "ca.crt"});
  ASSERT_EQ(
      cluster_.Cli({"submit", "--data", testing::SamplesDir(), "--model", "m", "--wait", "--out",
                    tmp_ / "out", "--tls-ca", tmp_ / "ca.crt", "--progress", "plain"},
                   &out_, &err_),
      0)
      << err_;
  CheckRunOutputs(testing::SamplesDir(), tmp_ / "out/m", "m", sim::AnswerStyle());
}

TEST_F(SecurityTest, MutualTlsRefusesClientsWithoutAGoodCertificate) {
  cluster_.StartCoordinator({"--tls-cert", tmp_ / "server.crt", "--tls-key", tmp_ / "server.key",
                             "--client-ca", tmp_ / "ca.crt", "--token-file", tmp_ / "token"});
  const std::vector<std::string> tls = {"--tls-ca", tmp_ / "ca.crt", "--token-file",
                                        tmp_ / "token"};
  EXPECT_EQ(Status(tls), 1);  // no client certificate
  std::vector<std::string> intruder = tls;
  intruder.insert(intruder.end(),
                  {"--tls-cert", tmp_ / "intruder.crt", "--tls-key", tmp_ / "intruder.key"});
  EXPECT_EQ(Status(intruder), 1);  // signed by another CA
  std::vector<std::string> good = tls;
  good.insert(good.end(), {"--tls-cert", tmp_ / "client.crt", "--tls-key", tmp_ / "client.key"});
  EXPECT_EQ(Status(good), 0) << err_;
}

TEST_F(SecurityTest, TheModelApiKeyNeverLeavesTheWorker) {
  const std::string key = "sk-medeval-TEST-never-leaks-0123456789";
  sim::SimOptions so;
  so.api_key = key;
  sim::SimServer sim(so);
  ASSERT_TRUE(sim.Start().ok());
  cluster_.StartCoordinator({"--token-file", tmp_ / "token"});
  cluster_.StartWorker(
      "w",
      {"--model", "m", "--base-url", absl::StrCat("http://127.0.0.1:", sim.port(), "/v1"),
       "--api-key-env", "SECRET_FOR_M", "--token-file", tmp_ / "token"},
      {}, {{"SECRET_FOR_M", key}});
  ASSERT_EQ(
      cluster_.Cli({"submit", "--data", testing::SamplesDir(), "--model", "m", "--wait", "--out",
                    tmp_ / "out", "--token-file", tmp_ / "token", "--progress", "plain"},
                   &out_, &err_),
      0)
      << err_;
  // Every file written anywhere: state directory, outputs, every process's log.
  int files = 0;
  for (const auto& e : std::filesystem::recursive_directory_iterator(tmp_.path())) {
    if (!e.is_regular_file()) continue;
    ++files;
    EXPECT_FALSE(absl::StrContains(testing::ReadText(e.path().string()), key)) << e.path();
  }
  EXPECT_GT(files, 50);
}

}  // namespace
}  // namespace medeval
