// How a run's Batch API batches read in the progress line and in `medeval
// status`: each batch's state and request counts ("in_progress 812/1,620"),
// the time it has waited and the end of its completion window.
//
// Thread-safe (pure functions).
#ifndef MEDEVAL_CLIENT_BATCH_VIEW_H_
#define MEDEVAL_CLIENT_BATCH_VIEW_H_

#include <string>

#include "absl/time/time.h"
#include "proto/medeval.pb.h"

namespace medeval {

// Whether nothing more will happen to the batch (completed, failed, expired,
// cancelled, lost).
bool BatchFinished(const v1::BatchState& batch);

// "batch_abc: in_progress 812/1,620 (3 failed), waited 3m07s of the 24h
// window (ends Nov 30 14:02)" (local time); a batch being created reads
// "(being created) 40 requests".
std::string BatchText(const v1::BatchState& batch, absl::Time now);

// The progress line's part for a run's unfinished batches: "batch
// in_progress 812/1,620, waited 3m07s of 24h" for one, "3 batches:
// 2 in_progress, 1 validating, 812/4,860, waited 9m12s of 24h" for several
// (the longest wait); "" when none is unfinished.
std::string BatchesSummary(const v1::RunStatus& run, absl::Time now);

}  // namespace medeval

#endif  // MEDEVAL_CLIENT_BATCH_VIEW_H_
