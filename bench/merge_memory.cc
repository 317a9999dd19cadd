// Peak memory of writing a run's outputs (the merge) when answers are large:
// a run of N questions whose journaled answers are M MiB each is merged in
// this process, and the growth of its peak resident memory (VmHWM, reset
// before the merge) is printed against the largest answer and the sum.
//
//   build/bench/merge_memory [--answers N] [--mib M]
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <future>
#include <string>

#include "absl/strings/str_cat.h"
#include "bench/bench_util.h"
#include "common/file_util.h"
#include "coordinator/run_output.h"
#include "coordinator/state_dir.h"

using namespace medeval;

namespace {

long StatusKib(const char* field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field, 0) == 0) return std::atol(line.c_str() + std::strlen(field));
  }
  return 0;
}

// Makes VmHWM start again from the current resident size.
void ResetPeak() {
  int fd = ::open("/proc/self/clear_refs", O_WRONLY);
  if (fd >= 0) {
    if (::write(fd, "5", 1) != 1) std::perror("clear_refs");
    ::close(fd);
  }
}

}  // namespace

int main(int argc, char** argv) {
  int answers = 4;
  int mib = 100;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--answers")) answers = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--mib")) mib = std::atoi(argv[i + 1]);
  }
  const std::string dir = bench::MakeTempDir();
  bench::WriteSyntheticSuite(JoinPath(dir, "suite"), "Synthetic", answers);
  auto input = ReadFile(JoinPath(dir, "suite/Synthetic.jsonl"));
  auto state = StateDir::Open(JoinPath(dir, "state"));
  if (!input.ok() || !state.ok()) return 1;
  v1::RunSpec base;
  base.set_model("m");
  base.set_track("v4-llm");
  auto spec = (*state)->CreateRun("run-1", {{"Synthetic.jsonl", *input}},
                                  [&](const std::string& in) -> absl::StatusOr<v1::RunSpec> {
                                    v1::RunSpec s = base;
                                    s.set_run_id("run-1");
                                    auto suite = LoadRunSuite(in, s);
                                    if (!suite.ok()) return suite.status();
                                    auto* d = s.add_datasets();
                                    d->set_name("Synthetic");
                                    d->set_input_path("Synthetic.jsonl");
                                    d->set_output_name("Synthetic.jsonl");
                                    d->set_input_sha256(suite->datasets[0].sha256);
                                    return s;
                                  });
  if (!spec.ok()) {
    std::fprintf(stderr, "%s\n", std::string(spec.status().message()).c_str());
    return 1;
  }
  {
    auto run = LoadRun(**state, *spec);
    if (!run.ok()) return 1;
    JournalWriter w;
    for (int q = 0; q < answers; ++q) {
      v1::JournalEntry e;
      e.set_index(static_cast<uint32_t>(q));
      std::string text(static_cast<size_t>(mib) << 20, 'a');
      for (size_t i = 0; i < text.size(); i += 97) text[i] = static_cast<char>('a' + q % 26);
      e.mutable_answer()->set_answer(std::move(text));
      e.mutable_answer()->set_attempts(1);
      std::promise<void> done;
      w.Append(run->journal, e.SerializeAsString(),
               [&](absl::StatusOr<uint64_t>) { done.set_value(); });
      done.get_future().wait();
    }
  }
  auto run = LoadRun(**state, *spec);
  if (!run.ok()) return 1;
  RunSnapshot snap;
  snap.spec = run->spec;
  snap.suite = run->suite;
  snap.journal = run->journal;
  snap.output_dir = run->output_dir;
  snap.state = run->state;
  snap.offset = run->offset;
  ResetPeak();
  const long before = StatusKib("VmRSS:");
  const double start = bench::NowSeconds();
  absl::Status st = WriteRunOutputs(snap, (*state)->InputDir("run-1"));
  const double secs = bench::NowSeconds() - start;
  const long peak = StatusKib("VmHWM:");
  if (!st.ok()) {
    std::fprintf(stderr, "merge: %s\n", std::string(st.message()).c_str());
    return 1;
  }
  const double growth_mib = static_cast<double>(peak - before) / 1024.0;
  std::printf("merge of %d answers of %d MiB (%d MiB in all) in %.1f s\n", answers, mib,
              answers * mib, secs);
  std::printf("  peak memory growth  %8.0f MiB = %.1f x the largest answer, %.2f x the sum\n",
              growth_mib, growth_mib / mib, growth_mib / (answers * mib));
  RemoveAll(dir).IgnoreError();
  return 0;
}
