#include "tests/integration/cluster.h"

#include <signal.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/file_util.h"
#include "gtest/gtest.h"

namespace medeval::testing {

Cluster::~Cluster() {
  for (auto& [name, w] : workers_) w->Kill(SIGKILL);
  if (coordinator_) coordinator_->Kill(SIGKILL);
}

void Cluster::StartCoordinator(const std::vector<std::string>& extra,
                               const std::vector<std::string>& wrap) {
  if (state_dir_.empty()) state_dir_ = JoinPath(dir_, "state");
  const std::string port_file = JoinPath(dir_, "coordinator.port");
  RemoveAll(port_file).IgnoreError();
  std::vector<std::string> argv = wrap;
  argv.push_back(MedevalBinary());
  for (const char* a : {"coordinator", "--state-dir"}) argv.push_back(a);
  argv.push_back(state_dir_);
  argv.push_back("--listen");
  argv.push_back(absl::StrCat(listen_host_, ":", port_));
  argv.push_back("--port-file");
  argv.push_back(port_file);
  argv.insert(argv.end(), extra.begin(), extra.end());
  coordinator_ = std::make_unique<Subprocess>();
  coordinator_->Start(argv, dir_);
  int port = 0;
  ASSERT_TRUE(WaitFor([&] {
    return absl::SimpleAtoi(absl::StripAsciiWhitespace(ReadText(port_file)), &port) ||
           !coordinator_->running();
  })) << coordinator_->err();
  ASSERT_GT(port, 0) << "coordinator did not start: " << coordinator_->err();
  port_ = port;
  target_ = absl::StrCat(listen_host_, ":", port_);
}

void Cluster::KillCoordinator(int sig) { coordinator_->Kill(sig); }

int Cluster::WaitCoordinator() { return coordinator_->Wait(absl::Seconds(30)); }

void Cluster::StartWorker(const std::string& name, const std::vector<std::string>& args,
                          const std::vector<std::string>& wrap,
                          const std::map<std::string, std::string>& env) {
  std::vector<std::string> argv = wrap;
  argv.push_back(MedevalBinary());
  argv.push_back("worker");
  argv.push_back("--coordinator");
  argv.push_back(target_);
  argv.push_back("--name");
  argv.push_back(name);
  argv.insert(argv.end(), args.begin(), args.end());
  auto p = std::make_unique<Subprocess>();
  p->Start(argv, dir_, env);
  workers_[name] = std::move(p);
}

int Cluster::Cli(std::vector<std::string> args, std::string* out, std::string* err,
                 const std::vector<std::string>& wrap) {
  args.push_back("--coordinator");
  args.push_back(target_);
  if (wrap.empty()) return RunMedeval(args, dir_, out, err);
  std::vector<std::string> argv = wrap;
  argv.push_back(MedevalBinary());
  argv.insert(argv.end(), args.begin(), args.end());
  Subprocess p;
  p.Start(argv, dir_);
  int code = p.Wait(absl::Seconds(180));
  if (out) *out = p.out();
  if (err) *err = p.err();
  return code;
}

CoordinatorClient& Cluster::client() {
  if (!client_ || client_->target() != target_) {
    client_ = std::move(*CoordinatorClient::Connect(target_, ClientSecurity{}));
  }
  return *client_;
}

bool Cluster::WaitRunFinished(const std::string& run_id, absl::Duration timeout) {
  return WaitFor(
      [&] {
        auto st = client().Status(run_id, absl::Seconds(2));
        if (!st.ok() || st->runs_size() != 1) return false;
        return st->runs(0).state() == "done" || st->runs(0).state() == "incomplete";
      },
      timeout);
}

}  // namespace medeval::testing
