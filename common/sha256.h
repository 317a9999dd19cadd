// SHA-256 digests (hex) for manifests and run identities, on OpenSSL's EVP.
//
// Sha256Hasher is not thread-safe; the free functions are.
#ifndef MEDEVAL_COMMON_SHA256_H_
#define MEDEVAL_COMMON_SHA256_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

typedef struct evp_md_ctx_st EVP_MD_CTX;

namespace medeval {

class Sha256Hasher {
 public:
  Sha256Hasher();
  ~Sha256Hasher();
  Sha256Hasher(const Sha256Hasher&) = delete;
  Sha256Hasher& operator=(const Sha256Hasher&) = delete;

  void Update(absl::string_view data);
  // Lower-case hex digest; the hasher must not be used afterwards.
  std::string HexDigest();

 private:
  EVP_MD_CTX* ctx_;
};

std::string Sha256Hex(absl::string_view data);
absl::StatusOr<std::string> Sha256File(const std::string& path);

}  // namespace medeval

#endif  // MEDEVAL_COMMON_SHA256_H_
