#include "coordinator/run_seed.h"

#include <map>
#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/log.h"

namespace medeval {
namespace {

// The images of question `i` of `ds` as (path, sha256) pairs; false when one
// has no known content.
bool ImageIdentity(const Suite& suite, const Dataset& ds, size_t i,
                   std::vector<std::pair<std::string, std::string>>* out) {
  out->clear();
  for (absl::string_view p : ds.images(i)) {
    auto it = suite.image_sha256.find(std::string(p));
    if (it == suite.image_sha256.end()) return false;
    out->emplace_back(it->first, it->second);
  }
  return true;
}

}  // namespace

absl::StatusOr<size_t> SeedFromEarlierRun(const StateDir& dir, JournalWriter& writer,
                                          const std::function<bool(const std::string&)>& in_use,
                                          LoadedRun* run) {
  const v1::RunSpec& spec = run->spec;
  if (spec.answers_key().empty()) return 0;
  auto ids = dir.ListRuns();
  if (!ids.ok()) return ids.status();
  std::optional<v1::RunSpec> earlier;
  for (auto it = ids->rbegin(); it != ids->rend() && !earlier.has_value(); ++it) {
    if (*it == spec.run_id()) continue;
    auto s = dir.ReadSpec(*it);
    if (s.ok() && s->answers_key() == spec.answers_key() &&
        s->idempotency_key() != spec.idempotency_key()) {
      earlier = std::move(*s);
    }
  }
  if (!earlier.has_value() || in_use(earlier->run_id())) return 0;
  auto old = LoadRun(dir, *earlier);
  if (!old.ok()) {
    // Asking everything again is correct, only slower: say so and go on.
    MEDEVAL_LOG(WARNING) << "run " << spec.run_id() << ": the answers of run " << earlier->run_id()
                         << " cannot be reused: " << old.status().message();
    return 0;
  }
  const Suite& old_suite = *old->suite;
  std::map<std::pair<std::string, uint32_t>, uint32_t> old_index;  // (dataset, line) -> question
  uint32_t base = 0;
  for (const Dataset& ds : old_suite.datasets) {
    for (size_t i = 0; i < ds.size(); ++i) old_index[{ds.file.name, ds.line(i)}] = base + i;
    base += static_cast<uint32_t>(ds.size());
  }
  std::vector<uint32_t> starts;
  base = 0;
  for (const Dataset& ds : old_suite.datasets) {
    starts.push_back(base);
    base += static_cast<uint32_t>(ds.size());
  }

  // Filled by the journal writer's thread as the copies become durable.
  struct Copied {
    absl::Mutex mu;
    std::vector<std::pair<uint32_t, uint64_t>> written ABSL_GUARDED_BY(mu);  // (question, offset)
    absl::Status error ABSL_GUARDED_BY(mu);
  } copied;
  size_t queued = 0;
  uint32_t q = 0;
  std::vector<std::pair<std::string, std::string>> now_images, then_images;
  for (const Dataset& ds : run->suite->datasets) {
    for (size_t i = 0; i < ds.size(); ++i, ++q) {
      auto found = old_index.find({ds.file.name, ds.line(i)});
      if (found == old_index.end()) continue;  // skipped then (an image was missing)
      const uint32_t oq = found->second;
      if (old->state[oq] != kAnswered) continue;
      size_t d = 0;
      while (d + 1 < starts.size() && starts[d + 1] <= oq) ++d;
      const Dataset& ods = old_suite.datasets[d];
      const size_t oi = oq - starts[d];
      if (ods.question(oi) != ds.question(i)) continue;
      if (!ImageIdentity(*run->suite, ds, i, &now_images) ||
          !ImageIdentity(old_suite, ods, oi, &then_images) || now_images != then_images) {
        continue;  // an image changed: asked again
      }
      auto payload = old->journal->ReadAt(old->offset[oq]);
      v1::JournalEntry entry;
      if (!payload.ok() || !entry.ParseFromString(*payload) || !entry.has_answer()) continue;
      entry.set_index(q);
      ++queued;
      writer.Append(run->journal, entry.SerializeAsString(),
                    [&copied, q](absl::StatusOr<uint64_t> offset) {
                      absl::MutexLock lock(&copied.mu);
                      if (offset.ok()) {
                        copied.written.emplace_back(q, *offset);
                      } else if (copied.error.ok()) {
                        copied.error = offset.status();
                      }
                    });
    }
  }
  if (queued == 0) return 0;
  writer.Flush();
  absl::MutexLock lock(&copied.mu);
  if (!copied.error.ok()) return copied.error;
  for (const auto& [question, offset] : copied.written) {
    run->state[question] = kAnswered;
    run->offset[question] = offset;
  }
  MEDEVAL_LOG(INFO) << "run " << spec.run_id() << ": " << copied.written.size()
                    << " answers taken over from run " << earlier->run_id()
                    << " (same question, same images)";
  return copied.written.size();
}

}  // namespace medeval
