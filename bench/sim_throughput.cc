// How many requests per second `medeval sim` serves at zero latency, so it
// never limits the other benchmarks. The server runs as its own process; this
// program keeps `concurrency` keep-alive requests in flight with libcurl and
// counts answers over a fixed window.
//
//   build/bench/sim_throughput [--seconds 5] [--concurrency 64]
#include <signal.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "bench/bench_util.h"
#include "common/file_util.h"
#include "worker/http_client.h"

using namespace medeval;

int main(int argc, char** argv) {
  double seconds = 5;
  int concurrency = 64;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--seconds")) seconds = std::atof(argv[i + 1]);
    if (!std::strcmp(argv[i], "--concurrency")) concurrency = std::atoi(argv[i + 1]);
  }
  const std::string dir = bench::MakeTempDir();
  const std::string port_file = JoinPath(dir, "port");
  pid_t sim = bench::Spawn({bench::MedevalBinary(), "sim", "--port-file", port_file},
                           JoinPath(dir, "sim.log"));
  int port = bench::WaitPort(port_file, sim, 5);
  if (port == 0) {
    std::fprintf(stderr, "sim did not start\n");
    return 1;
  }
  HttpClient http(HttpClient::Options{concurrency, absl::Seconds(10)});
  std::atomic<long> done{0}, errors{0};
  std::atomic<bool> stop{false};
  const std::string url = absl::StrCat("http://127.0.0.1:", port, "/v1/chat/completions");
  std::function<void(int)> fire = [&](int i) {
    HttpRequest req;
    req.url = url;
    req.headers = {"Content-Type: application/json"};
    req.body = absl::StrCat(
        R"({"model": "bench", "temperature": 0, "messages": [{"role": "system", "content": "You are a helpful assistant."}, {"role": "user", "content": "请回答单项选择题，答案放在<>里。\nA. 一\nB. 二\nC. 三 )",
        i, R"("}]})");
    http.Send(std::move(req), [&, i](HttpResponse r) {
      (r.status == 200 ? done : errors)++;
      if (!stop.load()) fire(i + concurrency);
    });
  };
  for (int i = 0; i < concurrency; ++i) fire(i);
  std::this_thread::sleep_for(std::chrono::seconds(1));  // warm-up
  const long start_done = done.load();
  const double cpu0 = bench::CpuSeconds(sim);
  const double t0 = bench::NowSeconds();
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  const double elapsed = bench::NowSeconds() - t0;
  const long n = done.load() - start_done;
  const double cpu = bench::CpuSeconds(sim) - cpu0;
  stop = true;
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  ::kill(sim, SIGTERM);
  bench::WaitChild(sim);
  RemoveAll(dir).IgnoreError();
  std::printf("medeval sim, zero latency, %d keep-alive connections, %.0f s window\n", concurrency,
              elapsed);
  std::printf("  requests/s      %10.0f\n", n / elapsed);
  std::printf("  sim CPU/request %10.1f us  (%.2f cores busy in the server)\n",
              cpu / static_cast<double>(n) * 1e6, cpu / elapsed);
  std::printf("  errors          %10ld\n", errors.load());
  return 0;
}
