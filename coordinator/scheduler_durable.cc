// What the scheduler does when answers cannot be kept: an answer too large
// for the journal, and a journal that can no longer be written.
#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/file_util.h"
#include "common/log.h"
#include "coordinator/scheduler.h"
#include "coordinator/scheduler_internal.h"

namespace medeval {

// An answer too large to keep becomes a failure that says so (kept, never
// asked again in a loop), without its text.
void Scheduler::CapAnswer(v1::Result* r) {
  if (!r->has_answer()) return;
  const size_t size = r->answer().ByteSizeLong();
  if (size <= kMaxAnswerRecordBytes) return;
  v1::AnswerRecord f = r->answer();
  f.clear_answer();
  f.clear_raw_text();
  f.clear_reasoning();
  f.set_last_error(absl::StrCat("the answer record of ", size, " bytes exceeds the coordinator's ",
                                "limit of ", kMaxAnswerRecordBytes >> 20, " MiB"));
  *r->mutable_failure() = std::move(f);
}

void Scheduler::StopRun(Run* run, const absl::Status& why) {
  if (run->phase == RunPhase::kStopped) return;
  run->phase = RunPhase::kStopped;
  const std::string saved = absl::StrCat(run->answered, " answers saved");
  run->error =
      why.code() == absl::StatusCode::kResourceExhausted
          ? absl::StrCat("no space left on ", DirName(run->journal->path()), ": ", saved,
                         "; free space and run the same command again (", why.message(), ")")
          : absl::StrCat(why.message(), ": ", saved,
                         "; fix the problem and run the same command again");
  MEDEVAL_LOG(ERROR) << "run " << run->spec.run_id() << " stopped: " << run->error;
  auto& active = active_[run->spec.model()];
  active.erase(std::remove(active.begin(), active.end(), run), active.end());
  // Workers stop asking the run's questions.
  std::vector<uint64_t> ids;
  for (const auto& [id, lease] : leases_) {
    if (lease.run == run) ids.push_back(id);
  }
  for (uint64_t id : ids) CancelCopy(id, /*requeue=*/true);
}

}  // namespace medeval
