// `medeval compare` with 10 models x the v4 LLM suite (1,620 questions): the
// HTML report's size, the time to write it, and the time headless Chromium
// takes from navigation start until the first page of the question browser
// is drawn.
//
// Each model's run folder is written here, deterministically: answers in the
// asked format (one in ten in prose instead), free-text answers of 200-800
// characters, and for every other model a records.jsonl with 1,500 characters
// of reasoning per answer.
//
//   build/bench/compare_report [--models 10] [--data DIR] [--medeval BIN]
//                              [--runs 3] [--keep]
// --medeval runs another build (e.g. an older one) on the same folders.
#include <sys/stat.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "audit/format_rules.h"
#include "bench/bench_util.h"
#include "common/choice.h"
#include "common/file_util.h"
#include "common/suite.h"

using namespace medeval;

namespace {

const char* const kFiller[] = {
    "根据患者的临床表现和检查结果，", "首先需要明确诊断，",        "建议完善相关检查，",
    "同时注意监测生命体征。",         "治疗上以对症支持为主，",    "必要时请专科会诊。\n",
    "1. 一般治疗：休息、饮食调整；",  "2. 药物治疗：遵医嘱用药；", "3. 定期随访复查。\n"};

std::string Filler(std::mt19937& rng, size_t chars) {
  std::string out;
  while (out.size() < chars * 3) out += kFiller[rng() % (sizeof(kFiller) / sizeof(*kFiller))];
  return out;
}

std::string AnswerFor(const FormatRule& rule, const std::vector<ChoiceOption>& options,
                      std::mt19937& rng) {
  const bool prose = rng() % 10 == 0;
  const char letter = options.empty() ? 'A' : options[rng() % options.size()].letter;
  const std::string l(1, letter);
  if (prose) return absl::StrCat("根据题意分析，", Filler(rng, 60), "故选", l, "。");
  switch (rule.format) {
    case AnswerFormat::kLetter:
      return l;
    case AnswerFormat::kLetterInBrackets:
      return "<" + l + ">";
    case AnswerFormat::kLetters:
    case AnswerFormat::kLettersComma:
      return l;
    case AnswerFormat::kLettersInBracketsComma:
      return "<" + l + ">";
    case AnswerFormat::kJsonObject:
    case AnswerFormat::kJsonObjectOrList:
      return absl::StrCat("{\"诊断\": \"", Filler(rng, 20), "\", \"治疗方案\": \"",
                          Filler(rng, 200), "\"}");
    case AnswerFormat::kJsonArray:
      return absl::StrCat("[{\"鉴别诊断1\": \"甲\", \"诊断依据1\": \"", Filler(rng, 200), "\"}]");
    case AnswerFormat::kList:
      return "消化内科、普外科";
    case AnswerFormat::kFields:
    case AnswerFormat::kFreeText:
      return Filler(rng, 200 + rng() % 600);
  }
  return "";
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Milliseconds from navigation start until the report's scripts have run
// (HTML parsed, data parsed, first page of the browser shown), read from a
// copy of the report with one line of script added at its end; -1 when
// Chromium gave nothing back.
double RenderMs(const std::string& html, const std::string& dir) {
  auto text = ReadFile(html);
  if (!text.ok()) return -1;
  const std::string timed = JoinPath(dir, "timed.html");
  std::string page = *text;
  const size_t end = page.rfind("</body>");
  page.insert(end == std::string::npos ? page.size() : end,
              "<script>document.body.setAttribute('data-ms', "
              "String(performance.now()))</script>");
  if (!WriteFileAtomic(timed, page, false).ok()) return -1;
  const std::string dom = JoinPath(dir, "dom.html");
  std::string cmd = absl::StrCat(
      "/usr/bin/chromium --headless --no-sandbox --disable-gpu --no-first-run "
      "--disable-background-networking --disable-component-update --disable-sync "
      "--user-data-dir=",
      JoinPath(dir, "chrome"), " --virtual-time-budget=30000 --dump-dom file://", timed,
      " 2>/dev/null | grep -o 'data-ms=\"[0-9.]*\"' > ", dom);
  if (std::system(cmd.c_str()) != 0) return -1;
  auto out = ReadFile(dom);
  if (!out.ok() || out->size() < 10) return -1;
  return std::atof(out->c_str() + 9);
}

}  // namespace

int main(int argc, char** argv) {
  int models = 10, runs = 3;
  bool keep = false;
  std::string data, medeval = bench::MedevalBinary();
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--keep")) keep = true;
    if (i + 1 >= argc) continue;
    if (!std::strcmp(argv[i], "--models")) models = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--runs")) runs = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--data")) data = argv[i + 1];
    if (!std::strcmp(argv[i], "--medeval")) medeval = argv[i + 1];
  }
  const std::string dir = bench::MakeTempDir();
  if (data.empty()) data = bench::V4LlmOrSynthetic(dir, "Synthetic", 1620);
  LoadOptions lo;
  lo.check_images = false;
  auto suite = LoadSuite(data, lo);
  if (!suite.ok()) {
    std::fprintf(stderr, "%s\n", std::string(suite.status().message()).c_str());
    return 1;
  }
  std::vector<std::string> args = {medeval, "compare"};
  size_t questions = 0;
  for (int m = 0; m < models; ++m) {
    std::mt19937 rng(static_cast<uint32_t>(1000 + m));
    const std::string run = JoinPath(dir, absl::StrCat("model-", m));
    const std::string sub = JoinPath(run, "MedBench_LLM");
    mkdir(run.c_str(), 0755);
    mkdir(sub.c_str(), 0755);
    std::string records;
    questions = 0;
    for (const Dataset& ds : suite->datasets) {
      auto text = ReadFile(JoinPath(suite->root, ds.file.input_path));
      if (!text.ok()) return 1;
      std::vector<absl::string_view> lines = SplitLines(*text);
      std::string out;
      for (size_t i = 0; i < ds.size(); ++i) {
        const uint32_t n = ds.line(i);
        auto j = nlohmann::ordered_json::parse(lines[n - 1]);
        const std::string q = j["question"];
        const FormatRule rule = RuleFor(suite->track, ds.file.name, q);
        j["answer"] = AnswerFor(rule, ParseOptions(q), rng);
        out += j.dump() + "\n";
        ++questions;
        if (m % 2 == 0) {
          records += nlohmann::json{{"dataset", ds.file.name},
                                    {"line", n},
                                    {"reasoning", Filler(rng, 1500)},
                                    {"latency_s", 1.0 + (rng() % 100) / 10.0},
                                    {"usage", {{"total_tokens", 500 + rng() % 2000}}},
                                    {"finish_reason", "stop"}}
                         .dump() +
                     "\n";
        }
      }
      if (!WriteFileAtomic(JoinPath(sub, ds.file.name + ".jsonl"), out, false).ok()) return 1;
    }
    if (!records.empty() && !WriteFileAtomic(JoinPath(run, "records.jsonl"), records, false).ok()) {
      return 1;
    }
    WriteFileAtomic(JoinPath(run, "manifest.json"),
                    nlohmann::json{{"model", absl::StrCat("org/model-", m)}}.dump(), false)
        .IgnoreError();
    args.push_back(run);
  }
  const std::string html = JoinPath(dir, "report.html");
  args.insert(args.end(), {"--data", data, "--html", html});
  std::vector<double> write_s, render_ms;
  for (int r = 0; r < runs; ++r) {
    const double t0 = bench::NowSeconds();
    if (bench::WaitChild(bench::Spawn(args, JoinPath(dir, "compare.log"))) != 0) {
      std::fprintf(stderr, "compare failed, see %s\n", JoinPath(dir, "compare.log").c_str());
      return 1;
    }
    write_s.push_back(bench::NowSeconds() - t0);
  }
  for (int r = 0; r < runs; ++r) render_ms.push_back(RenderMs(html, dir));
  struct stat st {};
  stat(html.c_str(), &st);
  std::printf(
      "%d models x %zu questions (%s)\n"
      "report: %.1f MB\n"
      "compare: %.2f s to read, audit and write (median of %d)\n"
      "render: %.2f s in headless Chromium from navigation start until the page is shown "
      "(HTML and data parsed, first page of questions drawn; median of %d)\n",
      models, questions, data.c_str(), static_cast<double>(st.st_size) / 1e6, Median(write_s), runs,
      Median(render_ms) / 1000, runs);
  if (keep) {
    std::printf("kept: %s\n", dir.c_str());
  } else {
    std::string cmd = "rm -rf '" + dir + "'";
    if (std::system(cmd.c_str()) != 0) return 1;
  }
  return 0;
}
