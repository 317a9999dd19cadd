// `medeval sim`: serve the simulated OpenAI-compatible model until SIGINT/SIGTERM.
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <memory>

#include "absl/strings/str_cat.h"
#include "cli/commands.h"
#include "cli/signals.h"
#include "common/file_util.h"
#include "common/http_headers.h"
#include "sim/sim_server.h"

namespace medeval::cli {

Command AddSimCommand(CLI::App& app) {
  struct Flags {
    sim::SimOptions o;
    std::string overflow = "queue";
    std::string port_file;
    std::string api_key_env;
    std::string profile;
    std::string engine = "fixed";
    std::vector<std::string> required_headers;
  };
  auto f = std::make_shared<Flags>();
  CLI::App* sub = app.add_subcommand(
      "sim", "Serve a simulated OpenAI-compatible model (for demos, tests, load and fault drills)");
  sub->add_option("--listen", f->o.listen, "HOST:PORT to listen on; port 0 picks a free port")
      ->capture_default_str();
  sub->add_option("--port-file", f->port_file, "Write the bound port to this file");
  sub->add_option("--profile", f->profile,
                  "Preset of the settings below: batching (a vLLM-like engine whose "
                  "throughput peaks at a knee), queue (--capacity 16 --overflow queue "
                  "--latency-ms 500) or hosted (--rate-limit-rps 20 --latency-ms 500); "
                  "flags given override it")
      ->check(CLI::IsMember({"batching", "queue", "hosted"}));
  CLI::Option* latency =
      sub->add_option("--latency-ms", f->o.latency_ms,
                      "Service time of one request (not used by --engine batching)")
          ->check(CLI::NonNegativeNumber);
  sub->add_option("--jitter", f->o.jitter_sigma, "Log-normal sigma of the latency (mean kept)")
      ->check(CLI::NonNegativeNumber);
  CLI::Option* capacity =
      sub->add_option("--capacity", f->o.capacity, "Requests served at once; 0 = unlimited")
          ->check(CLI::NonNegativeNumber);
  CLI::Option* overflow =
      sub->add_option("--overflow", f->overflow, "Over capacity: queue (like vLLM) or reject (429)")
          ->check(CLI::IsMember({"queue", "reject"}))
          ->capture_default_str();
  CLI::Option* rate_limit =
      sub->add_option("--rate-limit-rps", f->o.rate_limit_rps,
                      "Requests per second beyond which requests get 429 with Retry-After, like "
                      "a hosted API (token bucket, 1 s burst); 0 = no limit")
          ->check(CLI::NonNegativeNumber);
  // The continuous-batching engine (sim/batching_engine.h).
  sim::EngineOptions& e = f->o.engine;
  CLI::Option* engine =
      sub->add_option("--engine", f->engine,
                      "fixed (every request takes --latency-ms) or batching (a continuous-"
                      "batching engine generates every answer token by token)")
          ->check(CLI::IsMember({"fixed", "batching"}))
          ->capture_default_str();
  sub->add_option("--step-ms", e.step_ms, "Batching: fixed time of one engine step")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  sub->add_option("--step-ms-per-seq", e.step_ms_per_seq,
                  "Batching: step time added per running sequence")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  sub->add_option("--step-ms-per-queued", e.step_ms_per_queued,
                  "Batching: step time added per waiting request (scheduler and API server)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  sub->add_option("--prefill-ms-per-1k-tokens", e.prefill_ms_per_1k_tokens,
                  "Batching: step time added per 1,000 prompt tokens admitted in the step")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  sub->add_option("--kv-tokens", e.kv_tokens,
                  "Batching: KV cache size (prompt + generated tokens of running sequences)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  sub->add_option("--max-running", e.max_running, "Batching: sequences in one batch at most")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  CLI::Option* preempt =
      sub->add_flag("--preempt,!--no-preempt", e.preempt,
                    "Batching: admit while prompts fit and preempt the newest sequence when the "
                    "cache overflows (recompute, like vLLM), instead of reserving whole "
                    "sequences");
  CLI::Option* completion_tokens =
      sub->add_option("--completion-tokens", f->o.style.completion_tokens,
                      "Make shorter answers up to this many completion tokens with hidden "
                      "reasoning (counted in usage); 0 = none")
          ->check(CLI::NonNegativeNumber);
  sub->add_option("--threads", f->o.threads, "I/O threads; 0 = one per core");
  auto rate = CLI::Range(0.0, 1.0);
  sub->add_option("--fail-rate", f->o.fail_rate, "Fraction answered 500")->check(rate);
  sub->add_option("--ratelimit-rate", f->o.ratelimit_rate, "Fraction answered 429 + Retry-After")
      ->check(rate);
  sub->add_option("--drop-rate", f->o.drop_rate, "Fraction whose connection is reset")->check(rate);
  sub->add_option("--garbage-rate", f->o.garbage_rate,
                  "Fraction answered 200 with a malformed body")
      ->check(rate);
  sub->add_option("--hang-rate", f->o.hang_rate, "Fraction never answered")->check(rate);
  sub->add_option("--retry-after", f->o.retry_after_s, "Retry-After seconds of 429 answers")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  sub->add_flag("--think", f->o.style.think, "Prefix answers with a <think>...</think> block");
  sub->add_flag("--reasoning-field", f->o.style.reasoning_field,
                "Return reasoning in reasoning_content");
  sub->add_option("--format-violation-rate", f->o.style.format_violation_rate,
                  "Fraction of questions answered in prose instead of the requested format")
      ->check(rate);
  sub->add_option("--flip-rate", f->o.style.flip_rate,
                  "Fraction of choice questions answered by position (inconsistent under "
                  "shuffled options)")
      ->check(rate);
  auto& rates = f->o.responses.rates;
  auto rate_of = [&rates](sim::ContentFault c) -> double& { return rates[static_cast<size_t>(c)]; };
  sub->add_option("--empty-rate", rate_of(sim::ContentFault::kEmpty),
                  "Fraction answered 200 with empty content")
      ->check(rate);
  sub->add_option("--whitespace-rate", rate_of(sim::ContentFault::kWhitespace),
                  "Fraction answered with content of white space only (U+3000 included)")
      ->check(rate);
  sub->add_option("--reasoning-only-rate", rate_of(sim::ContentFault::kReasoningOnly),
                  "Fraction answered with content null and the text in reasoning_content")
      ->check(rate);
  sub->add_option("--think-only-rate", rate_of(sim::ContentFault::kThinkOnly),
                  "Fraction answered with content that is only a <think> block")
      ->check(rate);
  sub->add_option("--invalid-utf8-rate", rate_of(sim::ContentFault::kInvalidUtf8),
                  "Fraction answered with bytes that are not UTF-8 in the content")
      ->check(rate);
  sub->add_option("--huge-rate", rate_of(sim::ContentFault::kHuge),
                  "Fraction answered with a body of --huge-bytes")
      ->check(rate);
  sub->add_option("--huge-bytes", f->o.responses.huge_bytes, "Size of a huge body")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  sub->add_flag("--gzip", f->o.responses.gzip, "Send answers gzip-compressed (Content-Encoding)");
  sub->add_option("--bad-gzip-rate", f->o.responses.bad_gzip_rate,
                  "Fraction answered 'Content-Encoding: gzip' over a body that is not gzip")
      ->check(rate);
  sub->add_option("--served-model", f->o.responses.served_model,
                  "Model name answered in responses, whatever the request asked for");
  sub->add_option("--api-key", f->o.api_key, "Require 'Authorization: Bearer KEY'");
  sub->add_option("--api-key-env", f->api_key_env, "Read the required key from this variable");
  sub->add_option("--require-header", f->required_headers,
                  "Require this header, \"Name: value\", on every /v1 request (repeatable)");
  sub->add_option("--seed", f->o.style.seed, "Seed of answers and faults")->capture_default_str();
  sub->add_option("--model-name", f->o.model_name, "Model id listed by /v1/models")
      ->capture_default_str();
  sim::BatchOptions& b = f->o.batch;
  sub->add_option("--batch-lines-per-s", b.lines_per_s,
                  "Batch API: lines processed per second; 0 = all at once")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  sub->add_option("--batch-validate-ms", b.validate_ms, "Batch API: time spent validating")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  sub->add_option("--batch-finalize-ms", b.finalize_ms,
                  "Batch API: time spent finalizing (and cancelling)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  sub->add_option("--batch-expire-s", b.expire_s,
                  "Batch API: a batch not done this long after creation expires")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  sub->add_option("--batch-line-fail-rate", b.line_fail_rate,
                  "Batch API: fraction of lines answered 500 in the error file")
      ->check(rate);
  sub->add_option("--batch-max-lines", b.max_lines, "Batch API: requests per input file")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  sub->add_option("--batch-max-bytes", b.max_file_bytes, "Batch API: bytes per input file")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  sub->add_option("--batch-max-enqueued-tokens", b.max_enqueued_tokens,
                  "Batch API: prompt tokens of unfinished batches; 0 = no limit")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  // Whole-endpoint faults (also set while serving with POST /control).
  sub->add_flag("--html-404", f->o.endpoint_faults.html_404,
                "Answer every API path 404 with an HTML page, like a plain web server");
  sub->add_option("--proxy-status", f->o.endpoint_faults.proxy_status,
                  "Answer every API request with this status and an HTML page, like a proxy "
                  "whose upstream is gone (502, 503 or 504)")
      ->check(CLI::IsMember({502, 503, 504}));
  sub->add_option("--unauthorized-after", f->o.endpoint_faults.unauthorized_after,
                  "After this many answers, refuse every request with 401 (a revoked key)")
      ->check(CLI::NonNegativeNumber);
  sub->add_option("--redirect-to", f->o.endpoint_faults.redirect_to,
                  "Answer every API request 301 with Location: URL + the request's path");
  sub->add_option("--down-after", f->o.down_after,
                  "After this many answers, refuse connections for --down-for seconds, then "
                  "serve again (a restarted server)")
      ->check(CLI::NonNegativeNumber);
  sub->add_option_function<double>(
         "--down-for", [f](double s) { f->o.down_for = absl::Seconds(s); },
         "Seconds the --down-after outage lasts (default 10)")
      ->check(CLI::PositiveNumber);

  return {sub, [=]() -> int {
            // A preset fills in what the command line did not set.
            auto preset = [](CLI::Option* o, auto& field, auto value) {
              if (o->count() == 0) field = value;
            };
            if (f->profile == "batching") {
              preset(engine, f->engine, std::string("batching"));
              preset(preempt, f->o.engine.preempt, true);
              preset(completion_tokens, f->o.style.completion_tokens, int64_t{256});
            } else if (f->profile == "queue") {
              preset(capacity, f->o.capacity, 16);
              preset(overflow, f->overflow, std::string("queue"));
              preset(latency, f->o.latency_ms, 500.0);
            } else if (f->profile == "hosted") {
              preset(rate_limit, f->o.rate_limit_rps, 20.0);
              preset(latency, f->o.latency_ms, 500.0);
            }
            if (f->o.fail_rate + f->o.ratelimit_rate + f->o.drop_rate + f->o.garbage_rate +
                    f->o.hang_rate >
                1.0) {
              std::cerr << "medeval sim: the fault rates add up to more than 1\n";
              return kExitBadInput;
            }
            double content_rates = 0;
            for (double r : f->o.responses.rates) content_rates += r;
            if (content_rates > 1.0) {
              std::cerr << "medeval sim: the answer fault rates (--empty-rate ... --huge-rate) "
                           "add up to more than 1\n";
              return kExitBadInput;
            }
            if (!f->api_key_env.empty()) {
              const char* v = std::getenv(f->api_key_env.c_str());
              if (v == nullptr || *v == '\0') {
                std::cerr << "medeval sim: --api-key-env " << f->api_key_env
                          << " is not set in the environment\n";
                return kExitBadInput;
              }
              f->o.api_key = v;
            }
            for (const std::string& h : f->required_headers) {
              auto parsed = ParseHeaderLine(h, "--require-header");
              if (!parsed.ok()) {
                std::cerr << "medeval sim: " << parsed.status().message() << "\n";
                return kExitBadInput;
              }
              f->o.required_headers.push_back(std::move(*parsed));
            }
            f->o.overflow_reject = f->overflow == "reject";
            f->o.batching_engine = f->engine == "batching";
            sim::SimServer server(f->o);
            absl::Status st = server.Start();
            if (!st.ok()) {
              std::cerr << "medeval sim: " << st.message() << "\n";
              return st.code() == absl::StatusCode::kInvalidArgument ? kExitBadInput : kExitFailed;
            }
            if (!f->port_file.empty()) {
              st = WriteFileAtomic(f->port_file, absl::StrCat(server.port(), "\n"), false);
              if (!st.ok()) {
                std::cerr << "medeval sim: " << st.message() << "\n";
                return kExitFailed;
              }
            }
            std::string host = f->o.listen.substr(0, f->o.listen.rfind(':'));
            if (host.empty() || host == "0.0.0.0") host = "127.0.0.1";
            std::cout << "medeval sim listening on http://" << host << ":" << server.port() << "/v1"
                      << std::endl;
            WaitForTerminationSignal();
            server.Stop();
            return kExitOk;
          }};
}

}  // namespace medeval::cli
