#include "common/grpc_util.h"

#include <openssl/crypto.h>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/file_util.h"

namespace medeval {
namespace {

constexpr int kMaxMessageBytes = 512 << 20;

absl::StatusOr<std::string> ReadPem(const std::string& path, const char* what) {
  auto data = ReadFile(path);
  if (!data.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": ", data.status().message()));
  }
  if (!absl::StrContains(*data, "-----BEGIN")) {
    return absl::InvalidArgumentError(absl::StrCat(what, " ", path, ": not a PEM file"));
  }
  return data;
}

}  // namespace

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const ServerTls& tls) {
  if (tls.cert_file.empty() && tls.key_file.empty()) {
    if (!tls.client_ca_file.empty()) {
      return absl::InvalidArgumentError("--client-ca needs --tls-cert and --tls-key");
    }
    return grpc::InsecureServerCredentials();
  }
  if (tls.cert_file.empty() || tls.key_file.empty()) {
    return absl::InvalidArgumentError("--tls-cert and --tls-key go together");
  }
  auto cert = ReadPem(tls.cert_file, "--tls-cert");
  if (!cert.ok()) return cert.status();
  auto key = ReadPem(tls.key_file, "--tls-key");
  if (!key.ok()) return key.status();
  grpc::SslServerCredentialsOptions opts(GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
  opts.pem_key_cert_pairs.push_back({*key, *cert});
  if (!tls.client_ca_file.empty()) {
    auto ca = ReadPem(tls.client_ca_file, "--client-ca");
    if (!ca.ok()) return ca.status();
    opts.pem_root_certs = *ca;
    opts.client_certificate_request = GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY;
  }
  return grpc::SslServerCredentials(opts);
}

void ConfigureServerBuilder(grpc::ServerBuilder* builder) {
  builder->SetMaxReceiveMessageSize(kMaxMessageBytes);
  builder->SetMaxSendMessageSize(kMaxMessageBytes);
  builder->AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, 20000);
  builder->AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 10000);
  builder->AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  builder->AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 5000);
  builder->AddChannelArgument(GRPC_ARG_HTTP2_MAX_PING_STRIKES, 0);
}

absl::StatusOr<std::shared_ptr<grpc::Channel>> MakeChannel(const std::string& target,
                                                           const ClientSecurity& sec) {
  std::shared_ptr<grpc::ChannelCredentials> creds;
  grpc::ChannelArguments args;
  if (sec.ca_file.empty()) {
    if (!sec.cert_file.empty() || !sec.key_file.empty()) {
      return absl::InvalidArgumentError("a client certificate needs --tls-ca (TLS)");
    }
    creds = grpc::InsecureChannelCredentials();
  } else {
    grpc::SslCredentialsOptions opts;
    auto ca = ReadPem(sec.ca_file, "--tls-ca");
    if (!ca.ok()) return ca.status();
    opts.pem_root_certs = *ca;
    if (!sec.cert_file.empty() || !sec.key_file.empty()) {
      if (sec.cert_file.empty() || sec.key_file.empty()) {
        return absl::InvalidArgumentError("--tls-cert and --tls-key go together");
      }
      auto cert = ReadPem(sec.cert_file, "--tls-cert");
      if (!cert.ok()) return cert.status();
      auto key = ReadPem(sec.key_file, "--tls-key");
      if (!key.ok()) return key.status();
      opts.pem_cert_chain = *cert;
      opts.pem_private_key = *key;
    }
    creds = grpc::SslCredentials(opts);
    if (!sec.server_name.empty()) args.SetSslTargetNameOverride(sec.server_name);
  }
  args.SetMaxReceiveMessageSize(kMaxMessageBytes);
  args.SetMaxSendMessageSize(kMaxMessageBytes);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 20000);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 10000);
  args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  args.SetInt(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
  // A restarted coordinator is found again within its start-up grace.
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 250);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 250);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  return grpc::CreateCustomChannel(target, creds, args);
}

void AddAuth(grpc::ClientContext* context, const ClientSecurity& security) {
  if (!security.token.empty()) {
    context->AddMetadata("authorization", absl::StrCat("Bearer ", security.token));
  }
}

absl::StatusOr<std::string> ReadTokenFile(const std::string& path) {
  auto data = ReadFile(path);
  if (!data.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("--token-file: ", data.status().message()));
  }
  std::string token(absl::StripAsciiWhitespace(*data));
  if (token.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("--token-file ", path, " is empty"));
  }
  return token;
}

grpc::Status CheckAuth(const grpc::CallbackServerContext* context, const std::string& token) {
  if (token.empty()) return grpc::Status::OK;
  const auto& md = context->client_metadata();
  auto it = md.find("authorization");
  if (it == md.end()) {
    return grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                        "this coordinator requires a token: pass --token-file with the shared "
                        "token");
  }
  const std::string want = absl::StrCat("Bearer ", token);
  const std::string got(it->second.data(), it->second.size());
  if (got.size() != want.size() || CRYPTO_memcmp(got.data(), want.data(), want.size()) != 0) {
    return grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                        "the token was refused: check --token-file against the coordinator's");
  }
  return grpc::Status::OK;
}

std::string TlsSetupProblem(absl::string_view message, const ClientSecurity& security) {
  // gRPC's words (1.51, BoringSSL or OpenSSL underneath) for a handshake
  // that fails on the certificate or the protocol, not on the network.
  if (absl::StrContains(message, "certificate verify failed") ||
      absl::StrContains(message, "CERTIFICATE_VERIFY_FAILED")) {
    return security.ca_file.empty()
               ? "its TLS certificate is not signed by a CA this machine trusts (give the "
                 "coordinator's CA with --tls-ca)"
               : absl::StrCat("its TLS certificate is not signed by a CA in --tls-ca ",
                              security.ca_file);
  }
  if (size_t at = message.find(" is not in peer certificate"); at != absl::string_view::npos) {
    absl::string_view head = message.substr(0, at);
    const size_t name = head.rfind("Peer name ");
    const std::string wanted =
        name == absl::string_view::npos
            ? "the name dialled"
            : std::string(head.substr(name + absl::string_view("Peer name ").size()));
    return absl::StrCat("its TLS certificate does not name ", wanted,
                        " (set --tls-server-name to a name the certificate carries)");
  }
  if (absl::StrContains(message, "wrong version number") ||
      absl::StrContains(message, "WRONG_VERSION_NUMBER")) {
    return "it does not speak TLS (it runs without --tls-cert: drop --tls-ca, or give the "
           "coordinator a certificate)";
  }
  return "";
}

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(status.message()));
}

}  // namespace medeval
