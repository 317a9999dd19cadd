#include "cli/security_flags.h"

#include <cstdlib>

#include "absl/strings/str_cat.h"

namespace medeval::cli {

void ClientSecurityFlags::Add(CLI::App* app) {
  app->add_option("--coordinator", coordinator, "Coordinator HOST:PORT (env MEDEVAL_COORDINATOR)")
      ->envname("MEDEVAL_COORDINATOR");
  app->add_option("--tls-ca", tls_ca, "CA certificate to verify the coordinator (enables TLS)");
  app->add_option("--tls-cert", tls_cert, "Client certificate (mutual TLS)");
  app->add_option("--tls-key", tls_key, "Client private key (mutual TLS)");
  app->add_option("--tls-server-name", tls_server_name,
                  "Name expected in the coordinator's certificate, if not the host dialled");
  app->add_option("--token-file", token_file, "File holding the shared token");
}

absl::StatusOr<ClientSecurity> ClientSecurityFlags::Resolve() const {
  if (const size_t scheme = coordinator.find("://"); scheme != std::string::npos) {
    // gRPC would try to resolve "http" as a host name.
    std::string host_port = coordinator.substr(scheme + 3);
    while (!host_port.empty() && host_port.back() == '/') host_port.pop_back();
    return absl::InvalidArgumentError(
        absl::StrCat("--coordinator takes HOST:PORT, not a URL: pass --coordinator ", host_port,
                     " (TLS is turned on with --tls-ca, not with https://)"));
  }
  ClientSecurity s;
  s.ca_file = tls_ca;
  s.cert_file = tls_cert;
  s.key_file = tls_key;
  s.server_name = tls_server_name;
  if (!token_file.empty()) {
    auto token = ReadTokenFile(token_file);
    if (!token.ok()) return token.status();
    s.token = *token;
  }
  return s;
}

}  // namespace medeval::cli
