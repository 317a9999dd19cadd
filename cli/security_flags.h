// TLS and token flags of the commands that connect to a coordinator.
#ifndef MEDEVAL_CLI_SECURITY_FLAGS_H_
#define MEDEVAL_CLI_SECURITY_FLAGS_H_

#include <CLI/CLI.hpp>
#include <string>

#include "absl/status/statusor.h"
#include "common/grpc_util.h"

namespace medeval::cli {

struct ClientSecurityFlags {
  std::string coordinator;
  std::string tls_ca;
  std::string tls_cert;
  std::string tls_key;
  std::string tls_server_name;
  std::string token_file;
  void Add(CLI::App* app);
  absl::StatusOr<ClientSecurity> Resolve() const;
};

}  // namespace medeval::cli

#endif  // MEDEVAL_CLI_SECURITY_FLAGS_H_
