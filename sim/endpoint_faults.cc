#include "sim/endpoint_faults.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"

namespace medeval::sim {
namespace {

using json = nlohmann::json;

// nginx's own pages, byte for byte in shape: what a client meets when the
// URL points at a web server or at a proxy whose upstream is gone.
std::string NginxPage(int status, absl::string_view reason) {
  const std::string title = absl::StrCat(status, " ", reason);
  return absl::StrCat("<html>\r\n<head><title>", title, "</title></head>\r\n<body>\r\n<center><h1>",
                      title, "</h1></center>\r\n<hr><center>nginx/1.22.1</center>\r\n</body>\r\n",
                      "</html>\r\n");
}

absl::string_view Reason(int status) {
  switch (status) {
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Temporarily Unavailable";
    case 504:
      return "Gateway Time-out";
  }
  return "Error";
}

}  // namespace

EndpointFaults::EndpointFaults(const EndpointFaultOptions& o)
    : html_404_(o.html_404),
      proxy_status_(o.proxy_status),
      unauthorized_after_(o.unauthorized_after),
      redirect_to_(o.redirect_to) {}

std::optional<CannedResponse> EndpointFaults::Intercept(absl::string_view path,
                                                        uint64_t answered) const {
  {
    absl::MutexLock lock(&mu_);
    if (!redirect_to_.empty()) {
      ++n_redirect_;
      std::string target = redirect_to_;
      while (absl::EndsWith(target, "/")) target.pop_back();
      return CannedResponse{301, "text/html", NginxPage(301, "Moved Permanently"),
                            absl::StrCat(target, path)};
    }
  }
  if (const int s = proxy_status_.load(); s != 0) {
    ++n_proxy_;
    return CannedResponse{s, "text/html", NginxPage(s, Reason(s)), ""};
  }
  if (html_404_.load()) {
    ++n_html_404_;
    return CannedResponse{404, "text/html", NginxPage(404, "Not Found"), ""};
  }
  if (const int64_t after = unauthorized_after_.load();
      after >= 0 && answered >= static_cast<uint64_t>(after)) {
    ++n_unauthorized_;
    json e = {{"error",
               {{"message", "Incorrect API key provided (revoked). Pass a valid key."},
                {"type", "invalid_request_error"},
                {"param", nullptr},
                {"code", "invalid_api_key"}}}};
    return CannedResponse{401, "application/json", e.dump(), ""};
  }
  return std::nullopt;
}

bool EndpointFaults::Control(const std::string& key, const json& value, std::string* error) {
  if (key == "html_404") {
    if (!value.is_number() && !value.is_boolean()) *error = "'html_404' must be 0 or 1";
    if (error->empty())
      html_404_ = value.is_boolean() ? value.get<bool>() : value.get<double>() != 0;
    return true;
  }
  if (key == "proxy_status") {
    const int s = value.is_number_integer() ? value.get<int>() : -1;
    if (s != 0 && s != 502 && s != 503 && s != 504) {
      *error = "'proxy_status' must be 0 (off), 502, 503 or 504";
    } else {
      proxy_status_ = s;
    }
    return true;
  }
  if (key == "unauthorized_after") {
    if (!value.is_number_integer()) {
      *error = "'unauthorized_after' must be an integer (-1: off)";
    } else {
      unauthorized_after_ = value.get<int64_t>();
    }
    return true;
  }
  if (key == "redirect_to") {
    if (!value.is_string()) {
      *error = "'redirect_to' must be a URL (\"\": off)";
    } else {
      absl::MutexLock lock(&mu_);
      redirect_to_ = value.get<std::string>();
    }
    return true;
  }
  return false;
}

json EndpointFaults::Stats() const {
  return json{{"html_404", n_html_404_.load()},
              {"proxy_error", n_proxy_.load()},
              {"unauthorized_after", n_unauthorized_.load()},
              {"redirect", n_redirect_.load()}};
}

void EndpointFaults::ResetStats() {
  for (auto* c : {&n_html_404_, &n_proxy_, &n_unauthorized_, &n_redirect_}) c->store(0);
}

}  // namespace medeval::sim
