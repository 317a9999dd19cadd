// gRPC connections between medeval processes: optional TLS and mutual TLS,
// a shared bearer token, keepalive on both ends, generous message sizes.
//
// Thread-safe (pure functions; returned objects follow gRPC's rules).
#ifndef MEDEVAL_COMMON_GRPC_UTIL_H_
#define MEDEVAL_COMMON_GRPC_UTIL_H_

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace medeval {

// Files of the coordinator's TLS set-up; all empty: plaintext.
struct ServerTls {
  std::string cert_file;
  std::string key_file;
  std::string client_ca_file;  // set: clients must present a certificate it signed
};

// A client's view: CA to trust (set: TLS), optional client certificate for
// mutual TLS, optional token.
struct ClientSecurity {
  std::string ca_file;
  std::string cert_file;
  std::string key_file;
  std::string token;
  // Name to verify in the server certificate when it differs from the host
  // dialled (e.g. a certificate for "medeval-coordinator" reached by IP).
  std::string server_name;
};

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const ServerTls& tls);

// Keepalive and message-size arguments for a server.
void ConfigureServerBuilder(grpc::ServerBuilder* builder);

absl::StatusOr<std::shared_ptr<grpc::Channel>> MakeChannel(const std::string& target,
                                                           const ClientSecurity& security);

// Adds the bearer token (if any) to a call.
void AddAuth(grpc::ClientContext* context, const ClientSecurity& security);

// Reads a token file (surrounding whitespace trimmed); an empty token is an
// error.
absl::StatusOr<std::string> ReadTokenFile(const std::string& path);

// Checks the "authorization: Bearer ..." metadata of a call against `token`
// (no check when `token` is empty). UNAUTHENTICATED with a clear message
// otherwise.
grpc::Status CheckAuth(const grpc::CallbackServerContext* context, const std::string& token);

// What is wrong when a connection failed in its TLS handshake in a way that
// waiting does not mend: the server's certificate is not signed by a CA the
// client trusts, does not name the server, or the server does not speak TLS
// at all. Empty for any other failure (a server not up yet, a reset).
// `message`: a failed call's error message; `security`: the client's
// settings, to name the flag to fix.
std::string TlsSetupProblem(absl::string_view message, const ClientSecurity& security);

// absl::Status -> gRPC status (same code and message).
grpc::Status ToGrpcStatus(const absl::Status& status);

}  // namespace medeval

#endif  // MEDEVAL_COMMON_GRPC_UTIL_H_
