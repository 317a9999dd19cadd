// The medeval version, recorded in manifests and exchanged in handshakes.
#ifndef MEDEVAL_COMMON_VERSION_H_
#define MEDEVAL_COMMON_VERSION_H_

namespace medeval {

inline constexpr char kVersion[] = "0.1.0";

}  // namespace medeval

#endif  // MEDEVAL_COMMON_VERSION_H_
