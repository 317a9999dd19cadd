#include "common/model_config.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <set>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/file_util.h"
#include "common/http_headers.h"

namespace medeval {
namespace {

using json = nlohmann::json;

size_t EditDistance(const std::string& a, const std::string& b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] != b[j - 1])});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

// Reads nodes of one file and says what is wrong with "path:line: ...".
class Reader {
 public:
  explicit Reader(std::string path) : path_(std::move(path)) {}

  absl::Status Error(const YAML::Node& n, const std::string& msg) const {
    return absl::InvalidArgumentError(absl::StrCat(path_, ":", n.Mark().line + 1, ": ", msg));
  }

  absl::Status CheckKeys(const YAML::Node& map, const std::vector<std::string>& allowed,
                         const std::string& where) const {
    if (!map.IsMap()) return Error(map, absl::StrCat(where, " must be a mapping (key: value)"));
    for (const auto& kv : map) {
      if (!kv.first.IsScalar()) {
        return Error(kv.first, absl::StrCat("a key in ", where,
                                            " must be a plain name, not a list or mapping"));
      }
      const std::string key = kv.first.as<std::string>();
      if (std::find(allowed.begin(), allowed.end(), key) != allowed.end()) continue;
      std::string hint;
      for (const auto& a : allowed) {
        if (EditDistance(key, a) <= 2) hint = absl::StrCat(" (did you mean '", a, "'?)");
      }
      return Error(kv.first, absl::StrCat("unknown key '", key, "' in ", where, hint,
                                          "; known: ", absl::StrJoin(allowed, ", ")));
    }
    return absl::OkStatus();
  }

  absl::StatusOr<std::string> String(const YAML::Node& n, const std::string& key) const {
    if (!n.IsScalar()) return Error(n, absl::StrCat("'", key, "' must be a string"));
    return n.as<std::string>();
  }

  absl::StatusOr<double> Number(const YAML::Node& n, const std::string& key, double lo,
                                double hi) const {
    double v = 0;
    if (!n.IsScalar() || !absl::SimpleAtod(n.Scalar(), &v) || std::isnan(v)) {
      return Error(n, absl::StrCat("'", key, "' must be a number, not '", Describe(n), "'"));
    }
    if (v < lo || v > hi) {
      return Error(n, absl::StrCat("'", key, "' must be between ", lo, " and ", hi));
    }
    return v;
  }

  absl::StatusOr<int> Integer(const YAML::Node& n, const std::string& key, int lo, int hi) const {
    int v = 0;
    if (!n.IsScalar() || !absl::SimpleAtoi(n.Scalar(), &v)) {
      return Error(n, absl::StrCat("'", key, "' must be an integer, not '", Describe(n), "'"));
    }
    if (v < lo || v > hi) {
      return Error(n, absl::StrCat("'", key, "' must be between ", lo, " and ", hi));
    }
    return v;
  }

  absl::StatusOr<bool> Bool(const YAML::Node& n, const std::string& key) const {
    if (n.IsScalar()) {
      const std::string& s = n.Scalar();
      if (s == "true" || s == "yes" || s == "on") return true;
      if (s == "false" || s == "no" || s == "off") return false;
    }
    return Error(n, absl::StrCat("'", key, "' must be true or false, not '", Describe(n), "'"));
  }

  // A YAML node as JSON (for extra_body): plain scalars become numbers,
  // booleans or null when they read as such; quoted ones stay strings.
  json ToJson(const YAML::Node& n) const {
    switch (n.Type()) {
      case YAML::NodeType::Map: {
        json o = json::object();
        for (const auto& kv : n) o[kv.first.as<std::string>()] = ToJson(kv.second);
        return o;
      }
      case YAML::NodeType::Sequence: {
        json a = json::array();
        for (const auto& v : n) a.push_back(ToJson(v));
        return a;
      }
      case YAML::NodeType::Scalar: {
        const std::string& s = n.Scalar();
        if (n.Tag() == "!") return s;  // quoted
        if (s == "null" || s == "~") return nullptr;
        if (s == "true") return true;
        if (s == "false") return false;
        int64_t i;
        if (absl::SimpleAtoi(s, &i)) return i;
        double d;
        if (absl::SimpleAtod(s, &d)) return d;
        return s;
      }
      default:
        return nullptr;
    }
  }

  static std::string Describe(const YAML::Node& n) {
    if (n.IsScalar()) return n.Scalar();
    if (n.IsMap()) return "a mapping";
    if (n.IsSequence()) return "a list";
    return "nothing";
  }

 private:
  std::string path_;
};

absl::Status ReadRequest(const Reader& r, const YAML::Node& n, v1::RequestParams* p,
                         std::map<std::string, std::string>* worker_headers) {
  absl::Status st = r.CheckKeys(n,
                                {"system_prompt", "temperature", "top_p", "max_tokens", "timeout",
                                 "max_attempts", "extra_body", "headers"},
                                "request");
  if (!st.ok()) return st;
  for (const auto& kv : n) {
    const std::string key = kv.first.as<std::string>();
    const YAML::Node& v = kv.second;
    if (key == "system_prompt") {
      p->set_has_system_prompt(true);
      if (v.IsNull()) {
        p->set_system_prompt("");  // no system message
      } else {
        auto s = r.String(v, key);
        if (!s.ok()) return s.status();
        p->set_system_prompt(*s);
      }
    } else if (key == "temperature") {
      auto x = r.Number(v, key, 0, 2);
      if (!x.ok()) return x.status();
      p->set_temperature(*x);
    } else if (key == "top_p") {
      auto x = r.Number(v, key, 0, 1);
      if (!x.ok()) return x.status();
      p->set_top_p(*x);
    } else if (key == "max_tokens") {
      auto x = r.Integer(v, key, 1, 10000000);
      if (!x.ok()) return x.status();
      p->set_max_tokens(*x);
    } else if (key == "timeout") {
      auto x = r.Number(v, key, 0.001, 86400);
      if (!x.ok()) return x.status();
      p->set_timeout_s(*x);
    } else if (key == "max_attempts") {
      auto x = r.Integer(v, key, 1, 100);
      if (!x.ok()) return x.status();
      p->set_max_attempts(*x);
    } else if (key == "extra_body") {
      if (!v.IsMap()) return r.Error(v, "'extra_body' must be a mapping (merged into the request)");
      p->set_extra_body_json(r.ToJson(v).dump());
    } else if (key == "headers") {
      if (!v.IsMap()) return r.Error(v, "'headers' must be a mapping of header names to values");
      for (const auto& h : v) {
        const std::string name = h.first.as<std::string>();
        auto val = r.String(h.second, name);
        if (!val.ok()) return val.status();
        absl::Status bad = CheckHeader(name, *val, "'headers'");
        if (!bad.ok()) return r.Error(h.second, std::string(bad.message()));
        if (IsCredentialHeader(name)) {
          // A credential is the worker's, never a setting of the run.
          (*worker_headers)[name] = *val;
        } else {
          (*p->mutable_extra_headers())[name] = *val;
        }
      }
    }
  }
  return absl::OkStatus();
}

absl::Status ReadLimits(const Reader& r, const YAML::Node& n, v1::ModelLimits* l) {
  absl::Status st = r.CheckKeys(n, {"rpm", "tpm"}, "limits");
  if (!st.ok()) return st;
  for (const auto& kv : n) {
    const std::string key = kv.first.as<std::string>();
    auto x = r.Number(kv.second, key, 0, 1e12);
    if (!x.ok()) return x.status();
    (key == "rpm" ? l->set_rpm(*x) : l->set_tpm(*x));
  }
  return absl::OkStatus();
}

absl::Status ReadPrice(const Reader& r, const YAML::Node& n, v1::ModelPrice* p) {
  absl::Status st = r.CheckKeys(n, {"input", "output", "batch_discount"}, "price");
  if (!st.ok()) return st;
  for (const auto& kv : n) {
    const std::string key = kv.first.as<std::string>();
    auto x = r.Number(kv.second, key, 0, key == "batch_discount" ? 1 : 1e9);
    if (!x.ok()) return x.status();
    if (key == "input") p->set_input_per_million(*x);
    if (key == "output") p->set_output_per_million(*x);
    if (key == "batch_discount") p->set_batch_discount(*x);
  }
  return absl::OkStatus();
}

absl::Status ReadServe(const Reader& r, const YAML::Node& n, ServeConfig* s) {
  if (n.IsScalar()) {
    s->command = n.Scalar();
    return absl::OkStatus();
  }
  absl::Status st =
      r.CheckKeys(n, {"command", "startup_timeout", "stop_grace", "gpus", "port"}, "serve");
  if (!st.ok()) return st;
  for (const auto& kv : n) {
    const std::string key = kv.first.as<std::string>();
    const YAML::Node& v = kv.second;
    if (key == "command") {
      auto x = r.String(v, key);
      if (!x.ok()) return x.status();
      s->command = *x;
    } else if (key == "startup_timeout" || key == "stop_grace") {
      auto x = r.Number(v, key, 0.1, 86400);
      if (!x.ok()) return x.status();
      (key == "startup_timeout" ? s->startup_timeout_s : s->stop_grace_s) = *x;
    } else if (key == "gpus") {
      auto x = r.String(v, key);
      if (!x.ok()) return x.status();
      s->gpus = *x;
    } else if (key == "port") {
      auto x = r.Integer(v, key, 1, 65535);
      if (!x.ok()) return x.status();
      s->port = *x;
    }
  }
  if (s->command.empty()) return r.Error(n, "'serve' needs a 'command'");
  return absl::OkStatus();
}

// Fields shared by `defaults` and each model.
absl::Status ReadModelFields(const Reader& r, const YAML::Node& n, bool is_default, ModelEntry* m) {
  std::vector<std::string> keys = {"base_url", "api_key_env", "api_key_file",
                                   "workers",  "concurrency", "adaptive_concurrency",
                                   "max_concurrency",
                                   "limits",   "request",     "header_env",
                                   "price",    "batch"};
  if (!is_default) {
    for (const char* k : {"name", "served_model_name", "serve"}) keys.push_back(k);
  }
  absl::Status st = r.CheckKeys(n, keys, is_default ? "defaults" : "a model");
  if (!st.ok()) return st;
  for (const auto& kv : n) {
    const std::string key = kv.first.as<std::string>();
    const YAML::Node& v = kv.second;
    absl::Status s;
    if (key == "name" || key == "served_model_name" || key == "base_url" || key == "api_key_env" ||
        key == "api_key_file") {
      auto x = r.String(v, key);
      if (!x.ok()) return x.status();
      if (key == "name") m->name = *x;
      if (key == "served_model_name") m->served_model_name = *x;
      if (key == "base_url") m->base_url = *x;
      if (key == "api_key_env") m->api_key_env = *x;
      if (key == "api_key_file") m->api_key_file = *x;
    } else if (key == "workers") {
      auto x = r.Integer(v, key, 1, 1024);
      if (!x.ok()) return x.status();
      m->workers = *x;
    } else if (key == "concurrency") {
      if (v.IsScalar() && v.Scalar() == "auto") {
        m->concurrency = kAutoConcurrency;
        continue;
      }
      int64_t x = 0;
      if (!v.IsScalar() || !absl::SimpleAtoi(v.Scalar(), &x) || x < 1 || x > 4096) {
        return r.Error(v, absl::StrCat("'concurrency' must be 'auto' or a number of requests "
                                       "from 1 to 4096, not '",
                                       Reader::Describe(v), "'"));
      }
      m->concurrency = static_cast<int>(x);
    } else if (key == "max_concurrency") {
      auto x = r.Integer(v, key, 1, 4096);
      if (!x.ok()) return x.status();
      m->max_concurrency = *x;
    } else if (key == "adaptive_concurrency" || key == "batch") {
      auto x = r.Bool(v, key);
      if (!x.ok()) return x.status();
      (key == "batch" ? m->batch : m->adaptive_concurrency) = *x;
    } else if (key == "limits") {
      s = ReadLimits(r, v, &m->limits);
    } else if (key == "request") {
      s = ReadRequest(r, v, &m->params, &m->worker_headers);
    } else if (key == "header_env") {
      if (!v.IsMap()) {
        return r.Error(v, "'header_env' must be a mapping of header names to variable names");
      }
      for (const auto& h : v) {
        const std::string name = h.first.as<std::string>();
        auto var = r.String(h.second, name);
        if (!var.ok()) return var.status();
        absl::Status bad = CheckHeader(name, "", "'header_env'");
        if (!bad.ok()) return r.Error(h.first, std::string(bad.message()));
        m->header_env[name] = *var;
      }
    } else if (key == "price") {
      s = ReadPrice(r, v, &m->price);
    } else if (key == "serve") {
      m->has_serve = true;
      s = ReadServe(r, v, &m->serve);
    }
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

}  // namespace

const ModelEntry* ModelConfig::Find(const std::string& name) const {
  for (const auto& m : models) {
    if (m.name == name) return &m;
  }
  return nullptr;
}

absl::StatusOr<ModelConfig> ParseModelConfig(const std::string& text, const std::string& path,
                                             const v1::RequestParams& base) {
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::ParserException& e) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ":", e.mark.line + 1, ": not valid YAML: ", e.msg));
  }
  Reader r(path);
  ModelConfig config;
  config.path = path;
  if (!root.IsMap()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": expected a mapping with 'models:' (and optionally 'defaults:')"));
  }
  ModelEntry defaults;
  defaults.params = base;
  // yaml-cpp throws on any conversion it cannot make (a list used as a key,
  // say); every read of the document stays inside this try.
  try {
    absl::Status st = r.CheckKeys(root, {"defaults", "models"}, "the file");
    if (!st.ok()) return st;
    if (root["defaults"]) {
      st = ReadModelFields(r, root["defaults"], true, &defaults);
      if (!st.ok()) return st;
    }
    const YAML::Node models = root["models"];
    if (!models || !models.IsSequence() || models.size() == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": 'models:' must be a non-empty list of models"));
    }
    std::set<std::string> names;
    for (const auto& n : models) {
      ModelEntry m = defaults;
      m.line = n.Mark().line + 1;
      st = ReadModelFields(r, n, false, &m);
      if (!st.ok()) return st;
      if (m.name.empty()) return r.Error(n, "a model needs a 'name'");
      if (!names.insert(m.name).second) {
        return r.Error(n, absl::StrCat("model '", m.name, "' is listed twice"));
      }
      if (m.has_serve && n["base_url"]) {
        return r.Error(
            n, absl::StrCat("model '", m.name, "' has both 'serve' and 'base_url'; give one"));
      }
      config.models.push_back(std::move(m));
    }
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(path, ":", e.mark.line + 1, ": ", e.msg));
  }
  return config;
}

absl::StatusOr<ModelConfig> LoadModelConfig(const std::string& path,
                                            const v1::RequestParams& base) {
  auto text = ReadFile(path);
  if (!text.ok()) {
    return absl::Status(text.status().code(), absl::StrCat("--config: ", text.status().message()));
  }
  return ParseModelConfig(*text, path, base);
}

absl::StatusOr<int> ParseConcurrency(const std::string& value) {
  if (value == "auto") return kAutoConcurrency;
  int x = 0;
  if (!absl::SimpleAtoi(value, &x) || x < 1 || x > 4096) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--concurrency must be 'auto' or a number of requests from 1 to 4096, not '", value, "'"));
  }
  return x;
}

}  // namespace medeval
