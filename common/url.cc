#include "common/url.h"

#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace medeval {
namespace {

bool LooksSecret(absl::string_view name) {
  std::string n = absl::AsciiStrToLower(name);
  for (absl::string_view w : {"key", "token", "secret", "sig", "password", "auth"}) {
    if (absl::StrContains(n, w)) return true;
  }
  return false;
}

}  // namespace

absl::StatusOr<Endpoint> ParseEndpoint(absl::string_view url) {
  absl::string_view u = absl::StripAsciiWhitespace(url);
  std::string lower = absl::AsciiStrToLower(u);
  size_t scheme_len;
  if (absl::StartsWith(lower, "http://")) {
    scheme_len = 7;
  } else if (absl::StartsWith(lower, "https://")) {
    scheme_len = 8;
  } else {
    return absl::InvalidArgumentError(absl::StrCat("base URL '", RedactUrl(u),
                                                   "' must start with http:// or https:// "
                                                   "(e.g. http://localhost:8000/v1)"));
  }
  absl::string_view rest = u.substr(scheme_len);
  size_t slash = rest.find_first_of("/?#");
  absl::string_view host = rest.substr(0, slash);
  if (host.empty() || host.find('@') == 0) {
    return absl::InvalidArgumentError(absl::StrCat("base URL '", RedactUrl(u), "' has no host"));
  }
  if (u.find('#') != absl::string_view::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("base URL '", RedactUrl(u), "' must not hold a fragment (#)"));
  }
  std::string query;
  absl::string_view no_query = u;
  size_t q = u.find('?');
  if (q != absl::string_view::npos) {
    query = std::string(u.substr(q));
    no_query = u.substr(0, q);
  }
  std::string base(no_query);
  while (!base.empty() && base.back() == '/') base.pop_back();
  constexpr absl::string_view kChat = "/chat/completions";
  if (absl::EndsWith(base, kChat)) base.resize(base.size() - kChat.size());
  Endpoint ep;
  ep.base = base;
  ep.chat_completions = absl::StrCat(base, "/chat/completions", query);
  ep.models = absl::StrCat(base, "/models", query);
  return ep;
}

std::string RedactUrl(absl::string_view url) {
  std::string out(url);
  size_t scheme = out.find("://");
  if (scheme != std::string::npos) {
    size_t host_start = scheme + 3;
    size_t host_end = out.find_first_of("/?#", host_start);
    if (host_end == std::string::npos) host_end = out.size();
    size_t at = out.rfind('@', host_end);
    if (at != std::string::npos && at >= host_start) out.erase(host_start, at + 1 - host_start);
  }
  size_t q = out.find('?');
  if (q == std::string::npos) return out;
  std::string head = out.substr(0, q + 1);
  std::string tail = out.substr(q + 1);
  std::string frag;
  size_t hash = tail.find('#');
  if (hash != std::string::npos) {
    frag = tail.substr(hash);
    tail.resize(hash);
  }
  std::vector<std::string> parts = absl::StrSplit(tail, '&');
  for (auto& p : parts) {
    size_t eq = p.find('=');
    if (eq != std::string::npos && LooksSecret(p.substr(0, eq))) {
      p = absl::StrCat(p.substr(0, eq), "=REDACTED");
    }
  }
  return absl::StrCat(head, absl::StrJoin(parts, "&"), frag);
}

absl::Status CheckHeaderValue(absl::string_view what, absl::string_view value) {
  for (size_t i = 0; i < value.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(value[i]);
    if ((c < 0x20 && c != '\t') || c == 0x7f) {
      return absl::InvalidArgumentError(absl::StrCat(
          what, " holds ", c == '\n' || c == '\r' ? "a line break" : "a control character",
          " at byte ", i + 1, "; it must be one line of text (nothing was sent)"));
    }
  }
  return absl::OkStatus();
}

}  // namespace medeval
