#include "common/model_config.h"

#include <nlohmann/json.hpp>

#include "absl/strings/match.h"
#include "gtest/gtest.h"

namespace medeval {
namespace {

v1::RequestParams Base() {
  v1::RequestParams p;
  p.set_system_prompt("You are a helpful assistant.");
  p.set_has_system_prompt(true);
  p.set_temperature(0);
  p.set_timeout_s(600);
  p.set_max_attempts(6);
  return p;
}

absl::StatusOr<ModelConfig> Parse(const std::string& text) {
  return ParseModelConfig(text, "models.yaml", Base());
}

TEST(ModelConfigTest, ReadsModelsWithDefaults) {
  auto c = Parse(R"(defaults:
  concurrency: 8
  request:
    max_tokens: 2048
models:
  - name: qwen2.5-72b
    serve:
      command: "vllm serve /models/qwen --port {port}"
      gpus: "0,1,2,3"
      startup_timeout: 900
    served_model_name: qwen
  - name: gpt-4o
    base_url: https://api.example.com/v1
    api_key_env: EXAMPLE_KEY
    workers: 3
    concurrency: 32
    adaptive_concurrency: true
    limits: {rpm: 500, tpm: 300000}
    request:
      system_prompt: null
      temperature: 0.7
      top_p: 0.9
      extra_body: {chat_template_kwargs: {enable_thinking: false}, seed: 7, tag: "007"}
      headers: {X-Team: eval}
)");
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_EQ(c->models.size(), 2u);
  const ModelEntry& q = c->models[0];
  EXPECT_EQ(q.name, "qwen2.5-72b");
  EXPECT_TRUE(q.has_serve);
  EXPECT_EQ(q.serve.command, "vllm serve /models/qwen --port {port}");
  EXPECT_EQ(q.serve.gpus, "0,1,2,3");
  EXPECT_EQ(q.serve.startup_timeout_s, 900);
  EXPECT_EQ(q.served_model_name, "qwen");
  EXPECT_EQ(q.concurrency, 8);  // from defaults
  EXPECT_EQ(q.params.max_tokens(), 2048);
  EXPECT_EQ(q.params.system_prompt(), "You are a helpful assistant.");
  EXPECT_EQ(q.line, 6);
  const ModelEntry& g = c->models[1];
  EXPECT_EQ(g.workers, 3);
  EXPECT_EQ(g.concurrency, 32);
  EXPECT_TRUE(g.adaptive_concurrency);
  EXPECT_EQ(g.limits.rpm(), 500);
  EXPECT_EQ(g.limits.tpm(), 300000);
  EXPECT_TRUE(g.params.has_system_prompt());
  EXPECT_EQ(g.params.system_prompt(), "");  // null: no system message
  EXPECT_EQ(g.params.temperature(), 0.7);
  EXPECT_EQ(g.params.max_tokens(), 2048);
  auto extra = nlohmann::json::parse(g.params.extra_body_json());
  EXPECT_EQ(extra["chat_template_kwargs"]["enable_thinking"], false);
  EXPECT_EQ(extra["seed"], 7);
  EXPECT_EQ(extra["tag"], "007");  // quoted stays a string
  EXPECT_EQ(g.params.extra_headers().at("X-Team"), "eval");
  EXPECT_NE(c->Find("gpt-4o"), nullptr);
  EXPECT_EQ(c->Find("nope"), nullptr);
}

TEST(ModelConfigTest, UnknownKeysNameTheLineAndSuggest) {
  auto c = Parse("models:\n  - name: m\n    base_url: http://h/v1\n    concurency: 4\n");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StartsWith(c.status().message(), "models.yaml:4: unknown key 'concurency'"))
      << c.status();
  EXPECT_TRUE(absl::StrContains(c.status().message(), "did you mean 'concurrency'")) << c.status();
}

TEST(ModelConfigTest, WrongTypesNameTheLine) {
  struct Case {
    std::string text;
    std::string want;
  };
  for (const Case& k : std::vector<Case>{
           {"models:\n  - name: m\n    workers: two\n",
            "models.yaml:3: 'workers' must be an integer, not 'two'"},
           {"models:\n  - name: m\n    request:\n      temperature: hot\n",
            "models.yaml:4: 'temperature' must be a number, not 'hot'"},
           {"models:\n  - name: m\n    request:\n      temperature: 3\n",
            "models.yaml:4: 'temperature' must be between 0 and 2"},
           {"models:\n  - name: m\n    adaptive_concurrency: maybe\n",
            "models.yaml:3: 'adaptive_concurrency' must be true or false"},
           {"models:\n  - name: m\n    limits: 5\n", "models.yaml:3: limits must be a mapping"},
           {"models:\n  - base_url: http://h/v1\n", "models.yaml:2: a model needs a 'name'"},
           {"models:\n  - name: m\n  - name: m\n", "models.yaml:3: model 'm' is listed twice"},
           {"models:\n  - name: m\n    base_url: http://h\n    serve: x\n",
            "models.yaml:2: model 'm' has both 'serve' and 'base_url'"},
           {"models: [\n", "models.yaml:2: not valid YAML"},
           {"models: []\n", "models.yaml: 'models:' must be a non-empty list"},
           {"model:\n  - name: m\n", "models.yaml:1: unknown key 'model' in the file"},
       }) {
    auto c = Parse(k.text);
    ASSERT_FALSE(c.ok()) << k.text;
    EXPECT_TRUE(absl::StartsWith(c.status().message(), k.want))
        << c.status() << "\nwant: " << k.want;
  }
}

// YAML allows lists and mappings as keys; they used to abort the process.
TEST(ModelConfigTest, AComplexKeyIsAnErrorNotAnAbort) {
  for (const char* text :
       {"? [a, b]\n: 1\nmodels: []\n", "models:\n  - name: m\n    ? {x: 1}\n    : 2\n",
        "models:\n  - name: m\n    request:\n      headers:\n"
        "        ? [h]\n        : v\n"}) {
    auto c = Parse(text);
    ASSERT_FALSE(c.ok()) << text;
    EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument) << c.status();
    EXPECT_TRUE(absl::StrContains(c.status().message(), "models.yaml:")) << c.status();
  }
}

}  // namespace
}  // namespace medeval
