// Helpers for the benchmarks: child processes, CPU time, synthetic suites.
#ifndef MEDEVAL_BENCH_BENCH_UTIL_H_
#define MEDEVAL_BENCH_BENCH_UTIL_H_

#include <sys/types.h>

#include <string>
#include <vector>

namespace medeval::bench {

// Starts argv[0] with argv; stdout/stderr go to `log` (appended).
pid_t Spawn(const std::vector<std::string>& argv, const std::string& log);
// Waits for the child; returns its exit code (128+signal if killed).
int WaitChild(pid_t pid);
// User+system CPU seconds consumed so far by a live process.
double CpuSeconds(pid_t pid);
// Resident memory (VmRSS) of a live process, bytes.
long RssBytes(pid_t pid);
// The medeval executable next to the benchmark binaries.
std::string MedevalBinary();
// A fresh temporary folder.
std::string MakeTempDir();
// Writes a one-dataset v4 suite of `n` distinct short questions.
void WriteSyntheticSuite(const std::string& dir, const std::string& dataset, int n);
// The real MedBench v4 LLM questions when ../shared holds them, else a
// synthetic suite of `n` questions in one dataset written under `dir`.
std::string V4LlmOrSynthetic(const std::string& dir, const std::string& dataset, int n);
// The port a child started with --port-file FILE wrote there; 0 when the
// child exits first or `timeout_s` passes.
int WaitPort(const std::string& file, pid_t pid, double timeout_s = 600);
// Seconds since the epoch, as a double.
double NowSeconds();
// A manifest's "2026-11-29T21:48:29.921Z" as seconds since the epoch; 0 if unreadable.
double IsoToSeconds(const std::string& iso);

}  // namespace medeval::bench

#endif  // MEDEVAL_BENCH_BENCH_UTIL_H_
