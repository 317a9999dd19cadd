#include "worker/endpoint_probe.h"

#include <algorithm>
#include <future>
#include <nlohmann/json.hpp>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/url.h"
#include "worker/endpoint_health.h"

namespace medeval {
namespace {

std::string Scrub(std::string s, const std::string& key) {
  if (key.size() >= 4) s = absl::StrReplaceAll(s, {{key, "***"}});
  return s;
}

// "http://host/v1/models" -> "http://host/v1": what --base-url should be
// when GET <base>/models is redirected to `location`.
std::string BaseOfModelsUrl(const std::string& location) {
  absl::string_view l = location;
  l = l.substr(0, l.find('?'));
  if (absl::ConsumeSuffix(&l, "/models") || absl::ConsumeSuffix(&l, "/models/")) {
    return std::string(l);
  }
  return location;
}

}  // namespace

HttpRequest ModelsRequest(const BackendConfig& backend, const v1::RequestParams& params,
                          absl::Duration timeout) {
  HttpRequest req;
  req.method = "GET";
  req.url = backend.endpoint.models;
  req.timeout = timeout;
  if (!backend.api_key.empty()) {
    req.headers.push_back(absl::StrCat("Authorization: Bearer ", backend.api_key));
  }
  for (const auto& [k, v] : params.extra_headers()) req.headers.push_back(absl::StrCat(k, ": ", v));
  for (const auto& [k, v] : backend.headers) req.headers.push_back(absl::StrCat(k, ": ", v));
  return req;
}

absl::StatusOr<ModelsCheck> JudgeModelsResponse(const HttpResponse& r, const BackendConfig& backend,
                                                const std::string& model) {
  const std::string url = RedactUrl(backend.endpoint.base);
  const std::string models_url = RedactUrl(backend.endpoint.models);
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
    return absl::UnauthenticatedError(
        absl::StrCat("the model server at ", url, " refused the API key (HTTP ", r.status, ": ",
                     Scrub(ServerErrorMessage(r.body), backend.api_key),
                     "); set it with --api-key-env VAR, API_TOKEN or OPENAI_API_KEY"));
  }
  if (r.status >= 300 && r.status < 400) {
    const std::string to = RedactUrl(r.location);
    return absl::InvalidArgumentError(
        absl::StrCat("GET ", models_url, " is redirected (HTTP ", r.status, ") to ",
                     to.empty() ? "(no Location)" : to,
                     "; medeval does not follow redirects: if that is the API, pass --base-url ",
                     to.empty() ? "with its address" : BaseOfModelsUrl(to)));
  }
  if (r.status >= 500) {
    return absl::UnavailableError(absl::StrCat("the model server at ", url, " answers HTTP ",
                                               r.status, ": ", FirstLineOfBody(r.body),
                                               "; is it running (a proxy without its server?)"));
  }
  const std::string not_api = absl::StrCat("this is not an OpenAI-compatible API at ", url,
                                           ": GET ", models_url, " answered HTTP ", r.status, ", ");
  if (r.status != 200) {
    return absl::InvalidArgumentError(absl::StrCat(not_api,
                                                   FirstLineOfBody(Scrub(r.body, backend.api_key)),
                                                   "; the base URL usually ends in /v1"));
  }
  auto j = nlohmann::json::parse(r.body, nullptr, false);
  if (!j.is_object() || !j.contains("data") || !j["data"].is_array()) {
    return absl::InvalidArgumentError(
        absl::StrCat(not_api, "not a JSON model list: ", FirstLineOfBody(r.body)));
  }
  ModelsCheck check;
  check.latency = r.elapsed;
  for (const auto& m : j["data"]) {
    if (m.is_object() && m.contains("id") && m["id"].is_string()) {
      check.models.push_back(m["id"].get<std::string>());
    }
  }
  if (!model.empty() &&
      std::find(check.models.begin(), check.models.end(), model) == check.models.end()) {
    std::vector<std::string> shown(
        check.models.begin(), check.models.begin() + std::min<size_t>(check.models.size(), 10));
    check.warnings.push_back(absl::StrCat("the model '", model, "' is not among those ", url,
                                          " lists (",
                                          shown.empty() ? "none" : absl::StrJoin(shown, ", "),
                                          check.models.size() > 10 ? ", ..." : "",
                                          "); requests may fail with 404 or reach another model"));
  }
  return check;
}

absl::StatusOr<ModelsCheck> CheckModelsEndpoint(const BackendConfig& backend,
                                                const v1::RequestParams& params,
                                                const std::string& model, absl::Duration timeout) {
  HttpClient http(HttpClient::Options{1, timeout});
  std::promise<HttpResponse> done;
  http.Send(ModelsRequest(backend, params, timeout),
            [&done](HttpResponse r) { done.set_value(std::move(r)); });
  return JudgeModelsResponse(done.get_future().get(), backend, model);
}

}  // namespace medeval
