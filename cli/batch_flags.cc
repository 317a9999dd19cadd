#include "cli/batch_flags.h"

namespace medeval::cli {

void BatchFlags::Add(CLI::App* app, bool state_dir_flag) {
  app->add_flag("--batch", batch,
                "Ask through the provider's Batch API (OpenAI format; about half the price, "
                "answers within 24 h)");
  app->add_option("--batch-on-exit", on_exit,
                  "On Ctrl-C or SIGTERM: keep the batches running (a rerun re-attaches) or "
                  "cancel them (default: `run` asks when stdin is a terminal, else keep)")
      ->check(CLI::IsMember({"keep", "cancel"}));
  app->add_option("--batch-retry", retry,
                  "Lines that fail in a batch: ask them online, or in a new batch")
      ->check(CLI::IsMember({"online", "batch"}))
      ->capture_default_str();
  app->add_option("--batch-max-lines", max_lines, "Requests per batch (provider limit)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app->add_option("--batch-max-bytes", max_bytes, "Bytes per batch input file (provider limit)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app->add_option("--batch-max-enqueued-tokens", max_enqueued_tokens,
                  "Prompt tokens in unfinished batches at once (provider limit); 0 = none")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app->add_option("--batch-poll", poll_s,
                  "Seconds between the first looks at a batch (doubling up to 60)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app->add_option("--batch-linger", linger_s,
                  "Seconds to wait for more questions before submitting a batch")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  if (state_dir_flag) {
    app->add_option("--batch-state-dir", state_dir,
                    "Where batch ids are kept so a restarted worker re-attaches to its batches")
        ->capture_default_str();
  }
}

BatchSettings BatchFlags::Settings() const {
  BatchSettings s;
  s.enabled = batch;
  s.state_dir = state_dir;
  s.max_lines = max_lines;
  s.max_bytes = max_bytes;
  s.max_enqueued_tokens = max_enqueued_tokens;
  s.poll_min = absl::Seconds(poll_s);
  s.poll_max = std::max(absl::Seconds(60), s.poll_min);
  s.linger = absl::Seconds(linger_s);
  s.cancel_on_exit = on_exit == "cancel";
  s.retry_in_batch = retry == "batch";
  return s;
}

}  // namespace medeval::cli
