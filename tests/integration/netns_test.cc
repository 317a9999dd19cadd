// Several hosts on one machine: the coordinator, two workers and the
// simulated model server each in their own network namespace with their own
// address, joined by a bridge. One worker's link is cut mid-run; its leases
// expire and the run completes on the other. Skipped where namespaces cannot
// be created (not root, no CAP_SYS_ADMIN).
#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <nlohmann/json.hpp>
#include <set>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "gtest/gtest.h"
#include "tests/integration/cluster.h"
#include "tests/integration/output_checks.h"
#include "tests/testing/test_util.h"

namespace medeval {
namespace {

using json = nlohmann::json;

bool Sh(const std::string& cmd) {
  return std::system(absl::StrCat(cmd, " >/dev/null 2>&1").c_str()) == 0;
}

// Namespaces "<prefix>-<host>" on 10.<net>.0.0/24, all plugged into a bridge
// in "<prefix>-br".
class Hosts {
 public:
  Hosts() : prefix_(absl::StrCat("mev", ::getpid() % 100000)), net_(100 + ::getpid() % 100) {}
  ~Hosts() {
    for (const auto& h : hosts_) Sh(absl::StrCat("ip netns del ", Ns(h)));
    Sh(absl::StrCat("ip netns del ", Ns("br")));
  }
  bool Add(const std::string& host, int octet) {
    if (hosts_.empty()) {
      if (!Sh(absl::StrCat("ip netns add ", Ns("br"))) ||
          !Sh(absl::StrCat("ip -n ", Ns("br"), " link add br0 type bridge")) ||
          !Sh(absl::StrCat("ip -n ", Ns("br"), " link set br0 up"))) {
        return false;
      }
    }
    hosts_.push_back(host);
    const std::string ns = Ns(host), a = absl::StrCat(prefix_, host), b = absl::StrCat(a, "b");
    return Sh(absl::StrCat("ip netns add ", ns)) &&
           Sh(absl::StrCat("ip link add ", a, " type veth peer name ", b)) &&
           Sh(absl::StrCat("ip link set ", a, " netns ", ns, " name eth0")) &&
           Sh(absl::StrCat("ip link set ", b, " netns ", Ns("br"))) &&
           Sh(absl::StrCat("ip -n ", Ns("br"), " link set ", b, " master br0 up")) &&
           Sh(absl::StrCat("ip -n ", ns, " addr add ", Ip(octet), "/24 dev eth0")) &&
           Sh(absl::StrCat("ip -n ", ns, " link set eth0 up")) &&
           Sh(absl::StrCat("ip -n ", ns, " link set lo up"));
  }
  // Unplugs a host: its packets go nowhere, nothing is closed cleanly.
  bool Cut(const std::string& host) {
    return Sh(absl::StrCat("ip -n ", Ns(host), " link set eth0 down"));
  }
  std::vector<std::string> Exec(const std::string& host) const {
    return {"/usr/sbin/ip", "netns", "exec", Ns(host)};
  }
  std::string Ip(int octet) const { return absl::StrCat("10.", net_, ".0.", octet); }
  std::string Ns(const std::string& host) const { return absl::StrCat(prefix_, "-", host); }

 private:
  std::string prefix_;
  int net_;
  std::vector<std::string> hosts_;
};

TEST(NetnsTest, ACutWorkerLinkExpiresItsLeasesAndTheRunCompletesOnTheOther) {
  if (::geteuid() != 0 || !Sh("command -v ip")) GTEST_SKIP() << "needs root and iproute2";
  Hosts hosts;
  if (!hosts.Add("coord", 1)) GTEST_SKIP() << "cannot create network namespaces here";
  ASSERT_TRUE(hosts.Add("w1", 2));
  ASSERT_TRUE(hosts.Add("w2", 3));
  ASSERT_TRUE(hosts.Add("sim", 4));

  testing::TempDir tmp;
  testing::WriteSyntheticSuite(tmp / "suite", "MedHC", 400);
  testing::Subprocess sim;
  std::vector<std::string> sim_argv = hosts.Exec("sim");
  sim_argv.insert(sim_argv.end(),
                  {testing::MedevalBinary(), "sim", "--listen", absl::StrCat(hosts.Ip(4), ":8000"),
                   "--latency-ms", "20", "--capacity", "8"});
  sim.Start(sim_argv, tmp.path());
  ASSERT_TRUE(testing::WaitFor([&] { return absl::StrContains(sim.out(), "listening"); }))
      << sim.err();

  testing::Cluster cluster(tmp.path());
  cluster.set_listen_host(hosts.Ip(1));
  cluster.StartCoordinator({"--heartbeat-timeout", "3"}, hosts.Exec("coord"));
  const std::vector<std::string> worker = {
      "--model",       "m", "--base-url", absl::StrCat("http://", hosts.Ip(4), ":8000/v1"),
      "--concurrency", "4"};
  cluster.StartWorker("w1", worker, hosts.Exec("w1"));
  cluster.StartWorker("w2", worker, hosts.Exec("w2"));

  std::string out, err;
  ASSERT_EQ(cluster.Cli({"submit", "--data", tmp / "suite", "--model", "m"}, &out, &err,
                        hosts.Exec("coord")),
            0)
      << err;
  const std::string run(absl::StripAsciiWhitespace(out));
  auto answered = [&]() -> int {
    std::string o, e;
    if (cluster.Cli({"status", run, "--json"}, &o, &e, hosts.Exec("coord")) != 0) return -1;
    json j = json::parse(o, nullptr, false);
    if (j.is_discarded() || j["runs"].empty()) return -1;
    if (j["runs"][0]["state"] == "done") return 1 << 30;
    int n = 0;
    n = j["runs"][0]["answered"].get<int>();
    return n;
  };
  ASSERT_TRUE(testing::WaitFor([&] { return answered() >= 100; }, absl::Seconds(60)));
  ASSERT_TRUE(hosts.Cut("w1"));
  ASSERT_TRUE(testing::WaitFor([&] { return answered() == 1 << 30; }, absl::Seconds(120)))
      << cluster.coordinator().err();
  EXPECT_TRUE(absl::StrContains(cluster.coordinator().err(), "worker w1 sent nothing for"))
      << cluster.coordinator().err();
  ASSERT_EQ(cluster.Cli({"fetch", run, "--out", tmp / "out"}, &out, &err, hosts.Exec("coord")), 0)
      << err;
  CheckRunOutputs(tmp / "suite", tmp / "out/m", "m", sim::AnswerStyle());
  std::set<std::string> workers;
  for (const auto& r : testing::ReadJsonl(tmp / "out/m/records.jsonl")) workers.insert(r["worker"]);
  EXPECT_EQ(workers, (std::set<std::string>{"w1", "w2"}));
}

}  // namespace
}  // namespace medeval
