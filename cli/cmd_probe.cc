// `medeval probe`: check an endpoint with a few real requests before a long
// run, and print what passed.
#include <iostream>
#include <memory>

#include "cli/commands.h"
#include "cli/model_flags.h"
#include "client/run_spec.h"
#include "worker/endpoint_check.h"

namespace medeval::cli {

Command AddProbeCommand(CLI::App& app) {
  struct Flags {
    EndpointFlags endpoint;
    RequestFlags request;
    int max_tokens = 16384;
  };
  auto f = std::make_shared<Flags>();
  CLI::App* sub = app.add_subcommand(
      "probe",
      "Check an endpoint with real requests before a long run: OpenAI-compatible, model listed, "
      "a question answered, temperature 0, streaming, latency at 1/8/32 in flight, max_tokens");
  f->endpoint.Add(sub);
  f->request.Add(sub);
  sub->add_option("--try-max-tokens", f->max_tokens,
                  "Largest max_tokens to try (halved until one is accepted)")
      ->check(CLI::Range(256, 1 << 20))
      ->capture_default_str();
  return {sub, [f]() -> int {
            absl::Status st = f->endpoint.Resolve();
            auto backend = st.ok() ? f->endpoint.Backend() : absl::StatusOr<BackendConfig>(st);
            auto params = f->request.Params();
            if (!backend.ok() || !params.ok()) {
              std::cerr << "medeval probe: "
                        << (!backend.ok() ? backend.status() : params.status()).message() << "\n";
              return kExitBadInput;
            }
            EndpointCheckOptions o;
            o.backend = *backend;
            o.model = f->endpoint.model;
            o.params = *params;
            o.timeout = absl::Seconds(f->request.timeout_s);
            o.max_tokens = f->max_tokens;
            EndpointCheckReport report = CheckEndpoint(o);
            std::cout << report.Table();
            if (report.ok()) {
              std::cout << "\nready: everything a run needs passed\n";
              return kExitOk;
            }
            std::cout << "\nnot ready: a check a run needs failed (FAIL above)\n";
            return kExitFailed;
          }};
}

}  // namespace medeval::cli
