// The coordinator at scale, each part as real processes:
//
//   throughput  100,000 questions through a coordinator and 4 workers against
//               a zero-latency simulated server (journal on): answers/s end
//               to end, and the coordinator's CPU time per answer.
//   memory      the coordinator's resident memory with 1,000,000 questions
//               queued (synthetic suite, no workers).
//   restart     time from coordinator start to serving again with a journal
//               of 1,000,000 answers.
//
//   build/bench/coordinator_scale [--only throughput|memory|restart]
//                                 [--questions N] [--workers N] [--concurrency N]
#include <signal.h>

#include <cstdio>
#include <cstring>
#include <future>
#include <string>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "bench/bench_util.h"
#include "client/coordinator_client.h"
#include "common/file_util.h"
#include "coordinator/journal.h"
#include "proto/medeval.pb.h"

using namespace medeval;

namespace {

pid_t StartCoordinator(const std::string& dir, int* port) {
  const std::string port_file = JoinPath(dir, "coordinator.port");
  RemoveAll(port_file).IgnoreError();
  pid_t pid =
      bench::Spawn({bench::MedevalBinary(), "coordinator", "--listen", "127.0.0.1:0", "--state-dir",
                    JoinPath(dir, "state"), "--port-file", port_file, "--startup-grace", "0"},
                   JoinPath(dir, "coordinator.log"));
  *port = bench::WaitPort(port_file, pid);
  return pid;
}

std::string Submit(const std::string& dir, int port, const std::string& suite) {
  const std::string out = JoinPath(dir, "submit.out");
  pid_t p = bench::Spawn({bench::MedevalBinary(), "submit", "--coordinator",
                          absl::StrCat("127.0.0.1:", port), "--data", suite, "--model", "m"},
                         out);
  bench::WaitChild(p);
  std::string text = ReadFile(out).value_or("");
  size_t nl = text.find('\n');
  return nl == std::string::npos ? text : text.substr(0, nl);
}

void Throughput(int questions, int workers, int concurrency) {
  const std::string dir = bench::MakeTempDir();
  bench::WriteSyntheticSuite(JoinPath(dir, "suite"), "MedHC", questions);
  const std::string sim_port_file = JoinPath(dir, "sim.port");
  pid_t sim = bench::Spawn({bench::MedevalBinary(), "sim", "--port-file", sim_port_file},
                           JoinPath(dir, "sim.log"));
  const int sim_port = bench::WaitPort(sim_port_file, sim);
  int port = 0;
  pid_t coord = StartCoordinator(dir, &port);
  std::vector<pid_t> ws;
  for (int i = 0; i < workers; ++i) {
    ws.push_back(bench::Spawn(
        {bench::MedevalBinary(), "worker", "--coordinator", absl::StrCat("127.0.0.1:", port),
         "--model", "m", "--base-url", absl::StrCat("http://127.0.0.1:", sim_port, "/v1"),
         "--concurrency", std::to_string(concurrency), "--name", absl::StrCat("w", i)},
        JoinPath(dir, absl::StrCat("worker", i, ".log"))));
  }
  auto client = std::move(*CoordinatorClient::Connect(absl::StrCat("127.0.0.1:", port), {}));
  // Wait until every worker is connected.
  for (int i = 0; i < 500; ++i) {
    auto st = client->Status("");
    if (st.ok() && st->workers_size() == workers) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  const double cpu0 = bench::CpuSeconds(coord);
  const double sim_cpu0 = bench::CpuSeconds(sim);
  double workers_cpu0 = 0;
  for (pid_t w : ws) workers_cpu0 += bench::CpuSeconds(w);
  const std::string run = Submit(dir, port, JoinPath(dir, "suite"));
  const double cpu_submitted = bench::CpuSeconds(coord);
  double cpu_settled = 0;
  v1::RunStatus r;
  while (true) {
    auto st = client->Status(run);
    if (st.ok() && st->runs_size() == 1) {
      r = st->runs(0);
      if (cpu_settled == 0 && r.answered() + r.failed() == r.total()) {
        cpu_settled = bench::CpuSeconds(coord);
      }
      if (r.state() == "done" || r.state() == "incomplete") break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  const double cpu = bench::CpuSeconds(coord) - cpu0;
  const double cpu_serving = cpu_settled - cpu_submitted;
  const double sim_cpu = bench::CpuSeconds(sim) - sim_cpu0;
  double workers_cpu = -workers_cpu0;
  for (pid_t w : ws) workers_cpu += bench::CpuSeconds(w);
  const double secs = static_cast<double>(r.finished_unix_ms() - r.created_unix_ms()) / 1000.0;
  for (pid_t w : ws) ::kill(w, SIGKILL);
  ::kill(coord, SIGTERM);
  ::kill(sim, SIGTERM);
  for (pid_t w : ws) bench::WaitChild(w);
  bench::WaitChild(coord);
  bench::WaitChild(sim);
  std::printf("throughput: %d questions, %d workers x %d in flight, zero-latency sim, journal on\n",
              questions, workers, concurrency);
  std::printf("  answered            %10llu (failed %llu, duplicates %llu)\n",
              static_cast<unsigned long long>(r.answered()),
              static_cast<unsigned long long>(r.failed()),
              static_cast<unsigned long long>(r.duplicates()));
  std::printf("  run time            %10.2f s (submission stored -> last answer journaled)\n",
              secs);
  std::printf("  answers/s           %10.0f\n", static_cast<double>(r.answered()) / secs);
  const double n = static_cast<double>(r.answered());
  std::printf(
      "  coordinator CPU     %10.1f us per answer while serving (%.2f s; %.2f s more to "
      "store the submission and write the outputs)\n",
      cpu_serving / n * 1e6, cpu_serving, cpu - cpu_serving);
  std::printf("  workers CPU         %10.1f us per answer (all %d together)\n",
              workers_cpu / n * 1e6, workers);
  std::printf("  sim CPU             %10.1f us per answer\n", sim_cpu / n * 1e6);
  RemoveAll(dir).IgnoreError();
}

void Memory(int questions) {
  const std::string dir = bench::MakeTempDir();
  bench::WriteSyntheticSuite(JoinPath(dir, "suite"), "MedHC", questions);
  int port = 0;
  pid_t coord = StartCoordinator(dir, &port);
  const long idle = bench::RssBytes(coord);
  const std::string run = Submit(dir, port, JoinPath(dir, "suite"));
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  const long rss = bench::RssBytes(coord);
  ::kill(coord, SIGTERM);
  bench::WaitChild(coord);
  std::printf("memory: %d questions queued (run %s), no workers\n", questions, run.c_str());
  std::printf(
      "  coordinator RSS     %10.1f MiB (%.1f MiB before the submission; %.0f bytes per "
      "question)\n",
      rss / 1048576.0, idle / 1048576.0,
      static_cast<double>(rss - idle) / static_cast<double>(questions));
  RemoveAll(dir).IgnoreError();
}

void Restart(int questions) {
  const std::string dir = bench::MakeTempDir();
  bench::WriteSyntheticSuite(JoinPath(dir, "suite"), "MedHC", questions);
  int port = 0;
  pid_t coord = StartCoordinator(dir, &port);
  const std::string run = Submit(dir, port, JoinPath(dir, "suite"));
  ::kill(coord, SIGTERM);
  bench::WaitChild(coord);
  // A journal with an answer for every question, written as the coordinator
  // writes it.
  const std::string journal_path = JoinPath(JoinPath(JoinPath(dir, "state/runs"), run), "journal");
  uint64_t bytes = 0;
  {
    JournalReplay replay;
    auto f = JournalFile::Open(
        journal_path, run, [](uint64_t, absl::string_view) {}, &replay);
    JournalWriter w;
    for (int q = 0; q < questions; ++q) {
      v1::JournalEntry e;
      e.set_index(static_cast<uint32_t>(q));
      v1::AnswerRecord* a = e.mutable_answer();
      a->set_answer("【模拟回答 1a2b3c4d】根据所给信息，建议结合患者的具体情况进行综合评估。");
      a->set_raw_text(a->answer());
      a->set_finish_reason("stop");
      a->set_prompt_tokens(40);
      a->set_completion_tokens(30);
      a->set_total_tokens(70);
      a->set_latency_s(0.1);
      a->set_attempts(1);
      a->set_worker("w1");
      a->set_endpoint("http://127.0.0.1:8000/v1");
      a->set_started_unix_ms(1795600000000 + q);
      a->set_finished_unix_ms(1795600000100 + q);
      w.Append(*f, e.SerializeAsString(), [](absl::StatusOr<uint64_t>) {});
    }
    w.Flush();
    bytes = (*f)->durable_size();
  }
  // Drop the page cache's advantage as far as we can without root tricks:
  // the journal was just written, so this measures warm-cache recovery.
  const double t0 = bench::NowSeconds();
  pid_t again = StartCoordinator(dir, &port);
  const double serving = bench::NowSeconds() - t0;
  auto client = std::move(*CoordinatorClient::Connect(absl::StrCat("127.0.0.1:", port), {}));
  auto st = client->Status(run, absl::Seconds(60));
  const double answered = bench::NowSeconds() - t0;
  ::kill(again, SIGTERM);
  bench::WaitChild(again);
  std::printf("restart: journal of %d answers (%.1f MiB), warm page cache\n", questions,
              bytes / 1048576.0);
  std::printf("  start -> serving    %10.2f s (port open, run recovered)\n", serving);
  std::printf("  start -> status     %10.2f s (%s: %llu/%llu answered)\n", answered,
              st.ok() && st->runs_size() == 1 ? st->runs(0).state().c_str() : "?",
              st.ok() && st->runs_size() == 1
                  ? static_cast<unsigned long long>(st->runs(0).answered())
                  : 0ull,
              st.ok() && st->runs_size() == 1 ? static_cast<unsigned long long>(st->runs(0).total())
                                              : 0ull);
  std::printf("  %s\n",
              [&] {
                std::string log = ReadFile(JoinPath(dir, "coordinator.log")).value_or("");
                size_t at = log.rfind("recovered run");
                return at == std::string::npos ? std::string()
                                               : log.substr(at, log.find('\n', at) - at);
              }()
                  .c_str());
  RemoveAll(dir).IgnoreError();
}

}  // namespace

int main(int argc, char** argv) {
  std::string only;
  int questions = 0, workers = 4, concurrency = 64;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--only")) only = argv[i + 1];
    if (!std::strcmp(argv[i], "--questions")) questions = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--workers")) workers = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--concurrency")) concurrency = std::atoi(argv[i + 1]);
  }
  if (only.empty() || only == "throughput") {
    Throughput(questions > 0 ? questions : 100000, workers, concurrency);
  }
  if (only.empty() || only == "memory") Memory(questions > 0 ? questions : 1000000);
  if (only.empty() || only == "restart") Restart(questions > 0 ? questions : 1000000);
  return 0;
}
