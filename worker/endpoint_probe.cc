#include "worker/endpoint_probe.h"

#include <future>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "common/url.h"
#include "worker/http_client.h"

namespace medeval {

absl::Status ProbeEndpoint(const BackendConfig& backend, const v1::RequestParams& params,
                           absl::Duration timeout) {
  HttpClient http(HttpClient::Options{1, timeout});
  HttpRequest req;
  req.method = "GET";
  req.url = backend.endpoint.models;
  req.timeout = timeout;
  if (!backend.api_key.empty()) {
    req.headers.push_back(absl::StrCat("Authorization: Bearer ", backend.api_key));
  }
  for (const auto& [k, v] : params.extra_headers()) req.headers.push_back(absl::StrCat(k, ": ", v));
  for (const auto& [k, v] : backend.headers) req.headers.push_back(absl::StrCat(k, ": ", v));
  std::promise<HttpResponse> done;
  http.Send(req, [&done](HttpResponse r) { done.set_value(std::move(r)); });
  HttpResponse r = done.get_future().get();
  const std::string url = RedactUrl(backend.endpoint.base);
  if (!r.error.empty()) {
    if (absl::StartsWithIgnoreCase(backend.endpoint.base, "https://") &&
        (absl::StrContains(r.error, "SSL") || absl::StrContains(r.error, "TLS") ||
         absl::StrContains(r.error, "wrong version number"))) {
      return absl::UnavailableError(
          absl::StrCat("cannot reach the model server at ", url, " over https: ", r.error,
                       "; if the server speaks plain HTTP, use http:// in --base-url"));
    }
    return absl::UnavailableError(
        absl::StrCat("cannot reach the model server at ", url, ": ", r.error, "; is it running?"));
  }
  if ((r.status == 401 || r.status == 403) && backend.api_key.empty()) {
    return absl::UnauthenticatedError(absl::StrCat(
        "the model server at ", url, " requires an API key (HTTP ", r.status, ": ",
        ServerErrorMessage(r.body),
        ") and none was sent: set API_TOKEN or OPENAI_API_KEY, or pass --api-key-env VAR or "
        "--api-key-file F"));
  }
  if (r.status == 401 || r.status == 403) {
    std::string msg = ServerErrorMessage(r.body);
    if (backend.api_key.size() >= 4) msg = absl::StrReplaceAll(msg, {{backend.api_key, "***"}});
    return absl::UnauthenticatedError(
        absl::StrCat("the model server at ", url, " refused the API key (HTTP ", r.status, ": ",
                     msg, "); set it with --api-key-env VAR, API_TOKEN or OPENAI_API_KEY"));
  }
  return absl::OkStatus();
}

}  // namespace medeval
