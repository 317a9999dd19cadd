// What a chat completion counts as: the answer record the online path and
// the batch paths (a provider's batch output, `medeval batch import`) both
// keep, so a question answered either way is recorded the same way. Nothing
// is "answered" unless it is an answer: no content and no reasoning is an
// error.
//
// Thread-safety: pure functions.
#ifndef MEDEVAL_WORKER_ANSWER_RECORD_H_
#define MEDEVAL_WORKER_ANSWER_RECORD_H_

#include "absl/status/statusor.h"
#include "proto/medeval.pb.h"
#include "worker/chat_backend.h"

namespace medeval {

// The record of `c`'s answer (text, reasoning, flags, finish_reason, tokens;
// the caller adds timing, attempts, worker and endpoint). Errors:
// kInvalidArgument when the model produced nothing within max_tokens (the
// question's settings are at fault: asking again does not help),
// kUnavailable when the response has no content for another reason.
absl::StatusOr<v1::AnswerRecord> AnswerFromCompletion(const ChatCompletion& c);

}  // namespace medeval

#endif  // MEDEVAL_WORKER_ANSWER_RECORD_H_
