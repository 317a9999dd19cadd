// A protobuf message as JSON for people and scripts: field names as in the
// .proto, every field present, and 64-bit integers as JSON numbers (the
// protobuf JSON mapping prints them as strings, which `jq '.total > 5'`
// and most dashboards do not compare as numbers).
//
// Thread-safe (pure function).
#ifndef MEDEVAL_CLIENT_STATUS_JSON_H_
#define MEDEVAL_CLIENT_STATUS_JSON_H_

#include <google/protobuf/message.h>

#include <nlohmann/json.hpp>

namespace medeval {

nlohmann::ordered_json ProtoToJson(const google::protobuf::Message& message);

}  // namespace medeval

#endif  // MEDEVAL_CLIENT_STATUS_JSON_H_
