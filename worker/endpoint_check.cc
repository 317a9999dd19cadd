#include "worker/endpoint_check.h"

#include <algorithm>
#include <functional>
#include <future>
#include <memory>
#include <nlohmann/json.hpp>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "common/reasoning.h"
#include "common/url.h"
#include "common/utf8.h"
#include "worker/endpoint_health.h"
#include "worker/endpoint_probe.h"
#include "worker/http_client.h"

namespace medeval {
namespace {

using json = nlohmann::json;

// A question with one short right answer, in MedBench's language.
constexpr char kQuestion[] =
    "以下哪种维生素缺乏会导致坏血病？A. 维生素A B. 维生素B1 C. 维生素C D. 维生素D "
    "请只回答选项字母。";

std::vector<HttpResponse> SendMany(HttpClient& http, const HttpRequest& req, int n) {
  std::vector<std::promise<HttpResponse>> done(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    http.Send(req,
              [p = &done[static_cast<size_t>(i)]](HttpResponse r) { p->set_value(std::move(r)); });
  }
  std::vector<HttpResponse> out;
  for (auto& p : done) out.push_back(p.get_future().get());
  return out;
}

HttpResponse SendOne(HttpClient& http, const HttpRequest& req) {
  return std::move(SendMany(http, req, 1)[0]);
}

std::string Ms(absl::Duration d) { return absl::StrCat(absl::ToInt64Milliseconds(d), " ms"); }

// What went wrong with a response, briefly.
std::string Why(const HttpResponse& r) {
  if (!r.error.empty()) return DescribeDown(r);
  return absl::StrCat("HTTP ", r.status, ": ", ServerErrorMessage(r.body));
}

}  // namespace

bool EndpointCheckReport::ok() const {
  for (const CheckLine& l : lines) {
    if (l.needed && !l.pass) return false;
  }
  return !lines.empty();
}

std::string EndpointCheckReport::Table() const {
  std::string out = absl::StrFormat("%-36s %-6s %s\n", "CHECK", "RESULT", "DETAIL");
  for (const CheckLine& l : lines) {
    const char* result = l.pass ? "pass" : (l.needed ? "FAIL" : "warn");
    absl::StrAppendFormat(&out, "%-36s %-6s %s\n", l.check, result, l.detail);
  }
  return out;
}

EndpointCheckReport CheckEndpoint(const EndpointCheckOptions& o) {
  EndpointCheckReport report;
  auto add = [&](std::string check, bool pass, bool needed, std::string detail) {
    report.lines.push_back({std::move(check), pass, needed, std::move(detail)});
  };
  const int most = std::max(1, *std::max_element(o.in_flight.begin(), o.in_flight.end()));
  HttpClient http(HttpClient::Options{most + 2, std::min(o.timeout, absl::Seconds(10))});

  // 1. GET /models.
  std::promise<HttpResponse> models_done;
  http.Send(ModelsRequest(o.backend, o.params, std::min(o.timeout, absl::Seconds(30))),
            [&models_done](HttpResponse r) { models_done.set_value(std::move(r)); });
  const HttpResponse models_resp = models_done.get_future().get();
  auto models = JudgeModelsResponse(models_resp, o.backend, o.model);
  const std::string base = RedactUrl(o.backend.endpoint.base);
  if (!models.ok()) {
    add("reachable, OpenAI-compatible API", false, true, std::string(models.status().message()));
    return report;  // nothing else can be told
  }
  add("reachable, OpenAI-compatible API", true, true,
      absl::StrCat("GET ", RedactUrl(o.backend.endpoint.models), ": ", models->models.size(),
                   " models listed, ", Ms(models->latency)));
  add("model listed", models->warnings.empty(), false,
      models->warnings.empty() ? o.model : models->warnings[0]);

  // A request for kQuestion under the run's settings, adjusted by `change`.
  auto request = [&](const std::function<void(json&)>& change) {
    v1::Lease lease;
    lease.set_question(kQuestion);
    json body = json::parse(BuildChatRequest(o.model, o.params, lease));
    change(body);
    HttpRequest req;
    req.url = o.backend.endpoint.chat_completions;
    req.body = body.dump();
    req.timeout = o.timeout;
    req.headers.push_back("Content-Type: application/json");
    if (!o.backend.api_key.empty()) {
      req.headers.push_back(absl::StrCat("Authorization: Bearer ", o.backend.api_key));
    }
    for (const auto& [k, v] : o.params.extra_headers()) {
      req.headers.push_back(absl::StrCat(k, ": ", v));
    }
    for (const auto& [k, v] : o.backend.headers) req.headers.push_back(absl::StrCat(k, ": ", v));
    return req;
  };

  // 2. One real question, without temperature, and 3. with temperature 0.
  {
    HttpResponse r = SendOne(http, request([](json& b) { b.erase("temperature"); }));
    auto parsed = r.status == 200 ? ParseChatCompletion(r.body)
                                  : absl::StatusOr<ChatCompletion>(absl::UnknownError(Why(r)));
    if (!parsed.ok()) {
      add("answers a question", false, true, std::string(parsed.status().message()));
    } else {
      const ReasoningSplit split = SplitReasoning(parsed->content);
      const std::string answer(absl::StripAsciiWhitespace(split.answer));
      std::string reasoning = "no reasoning";
      if (!parsed->reasoning_field.empty()) {
        reasoning = absl::StrCat("reasoning apart in a field (",
                                 Utf8Length(parsed->reasoning_field), " chars)");
      } else if (!split.reasoning.empty()) {
        reasoning = absl::StrCat("reasoning in a <think> block, removed (",
                                 Utf8Length(split.reasoning), " chars)");
      }
      const bool ok = !answer.empty();
      add("answers a question", ok, true,
          ok ? absl::StrCat("\"", Utf8Prefix(answer, 40), answer.size() > 40 ? "..." : "", "\", ",
                            Ms(r.elapsed), "; ", reasoning)
             : absl::StrCat("empty content (finish_reason '", parsed->finish_reason, "'; ",
                            parsed->reasoning_field.empty()
                                ? "no reasoning either"
                                : "the text is only in the reasoning field, and MedBench reads "
                                  "content",
                            ")"));
    }
    HttpResponse t = SendOne(http, request([](json& b) { b["temperature"] = 0; }));
    add("temperature 0 accepted", t.status == 200, true, t.status == 200 ? Ms(t.elapsed) : Why(t));
  }

  // 4. Streaming (medeval does not need it; other tools do).
  {
    HttpResponse r = SendOne(http, request([](json& b) { b["stream"] = true; }));
    int chunks = 0;
    bool done = false;
    for (absl::string_view line : absl::StrSplit(r.body, '\n')) {
      if (absl::StartsWith(line, "data: [DONE]")) {
        done = true;
      } else if (absl::StartsWith(line, "data:")) {
        ++chunks;
      }
    }
    const bool ok = r.status == 200 && chunks > 0 && done;
    add("streaming", ok, false,
        r.status != 200
            ? Why(r)
            : absl::StrCat(chunks, " events", done ? ", ends with [DONE]" : ", no [DONE]"));
  }

  // 5. Latency with requests at once.
  for (int n : o.in_flight) {
    std::vector<HttpResponse> rs = SendMany(http, request([](json&) {}), n);
    std::vector<absl::Duration> lat;
    std::string first_error;
    for (const HttpResponse& r : rs) {
      if (r.status == 200) {
        lat.push_back(r.elapsed);
      } else if (first_error.empty()) {
        first_error = Why(r);
      }
    }
    std::sort(lat.begin(), lat.end());
    std::string detail = lat.empty() ? "no answer"
                                     : absl::StrCat("median ", Ms(lat[lat.size() / 2]),
                                                    ", slowest ", Ms(lat.back()));
    if (!first_error.empty()) {
      absl::StrAppend(&detail, "; ", rs.size() - lat.size(), " of ", n, " failed: ", first_error);
    }
    add(absl::StrCat("latency, ", n, " in flight"), lat.size() == rs.size(), false, detail);
  }

  // 6. The largest max_tokens accepted, halving from the largest asked.
  {
    int accepted = 0;
    std::string refused;
    for (int t = o.max_tokens; t >= 256 && accepted == 0; t /= 2) {
      HttpResponse r = SendOne(http, request([t](json& b) { b["max_tokens"] = t; }));
      if (r.status == 200) {
        accepted = t;
      } else if (refused.empty()) {
        refused = absl::StrCat(t, " refused (", Why(r), ")");
      }
    }
    const bool needed = o.params.has_max_tokens();
    const bool ok = accepted >= (needed ? o.params.max_tokens() : o.max_tokens);
    std::string detail = accepted > 0 ? absl::StrCat(accepted) : "none of those tried";
    if (!refused.empty()) absl::StrAppend(&detail, "; ", refused);
    absl::StrAppend(&detail, " (MedBench's API mode asks for ", o.max_tokens / 1024, "K)");
    add("largest max_tokens accepted", ok, needed, detail);
  }
  return report;
}

}  // namespace medeval
