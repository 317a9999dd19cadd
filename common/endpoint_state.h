// The words for a model endpoint's state as workers report it
// (v1::EndpointState): the worker logs them, and `run`, `submit --wait` and
// `status` show them, so all say it the same way.
//
// Thread-safety: pure functions.
#ifndef MEDEVAL_COMMON_ENDPOINT_STATE_H_
#define MEDEVAL_COMMON_ENDPOINT_STATE_H_

#include <string>

#include "proto/medeval.pb.h"

namespace medeval {

// "endpoint down since 14:03:07: connection refused, probing every 4s".
std::string EndpointDownText(const v1::EndpointState& state);

}  // namespace medeval

#endif  // MEDEVAL_COMMON_ENDPOINT_STATE_H_
