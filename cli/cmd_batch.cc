// `medeval batch export` and `medeval batch import`: the OpenAI batch file
// format for offline engines (`vllm run-batch`) and providers' Batch APIs.
#include <cstdlib>
#include <iostream>
#include <memory>

#include "absl/strings/str_split.h"
#include "cli/commands.h"
#include "cli/model_flags.h"
#include "common/file_util.h"
#include "common/log.h"
#include "local/batch_export.h"
#include "local/batch_import.h"
#include "local/run_job.h"

namespace medeval::cli {
namespace {

// What selects the questions and the requests: the same flags as `run`, so
// an export, its import and a later `run` name the same run.
struct SuiteFlags {
  std::string data;
  std::string track;
  std::string datasets;
  bool skip_invalid = false;
  v1::PdfOptions pdf;
  std::string model;
  RequestFlags request;

  void Add(CLI::App* sub) {
    sub->add_option("--data", data, "Folder of the suite")->required();
    sub->add_option("--model", model, "The model name sent in requests ($MODEL_NAME)");
    sub->add_option("--track", track, "v4-llm, v4-agent, v4-vlm or legacy-llm (default: detected)")
        ->check(CLI::IsMember({"v4-llm", "v4-agent", "v4-vlm", "legacy-llm"}));
    sub->add_option("--datasets", datasets, "Only these datasets (comma-separated)");
    sub->add_flag("--skip-invalid", skip_invalid, "Leave out invalid input lines");
    request.Add(sub);
    AddPdfFlags(sub, &pdf);
  }

  // kExitOk, or the exit code after printing why.
  int Resolve(const char* cmd, SuiteSelection* sel, v1::RequestParams* params) {
    if (model.empty()) {
      const char* m = std::getenv("MODEL_NAME");
      if (m != nullptr) model = m;
    }
    if (model.empty()) {
      std::cerr << "medeval batch " << cmd << ": --model is required\n";
      return kExitBadInput;
    }
    auto p = request.Params();
    if (!p.ok()) {
      std::cerr << "medeval batch " << cmd << ": " << p.status().message() << "\n";
      return kExitBadInput;
    }
    *params = *p;
    sel->data_dir = data;
    if (!track.empty()) sel->track = *ParseTrack(track);
    if (!datasets.empty()) sel->datasets = absl::StrSplit(datasets, ',', absl::SkipWhitespace());
    sel->skip_invalid = skip_invalid;
    sel->pdf = pdf;
    return kExitOk;
  }
};

}  // namespace

Command AddBatchCommand(CLI::App& app) {
  CLI::App* batch = app.add_subcommand(
      "batch", "OpenAI batch files: export the requests, import a batch's results");
  batch->require_subcommand(1);

  auto ex = std::make_shared<SuiteFlags>();
  auto ex_out = std::make_shared<std::string>("results");
  CLI::App* exp = batch->add_subcommand(
      "export",
      "Write one batch input line per question to stdout (for vllm run-batch or a "
      "provider's Batch API)");
  ex->Add(exp);
  exp->add_option("--out", *ex_out,
                  "VLM: rendered PDF pages are cached in OUT/.medeval/cache/pdf, as `run` does")
      ->capture_default_str();

  struct ImportFlags {
    SuiteFlags suite;
    std::vector<std::string> results;
    std::string out = "results";
    bool allow_incomplete = false;
    bool replace = false;
  };
  auto im = std::make_shared<ImportFlags>();
  CLI::App* imp = batch->add_subcommand(
      "import", "Turn a batch's output (and error) files into a result folder");
  im->suite.Add(imp);
  imp->add_option("results", im->results, "Output and error files of the batch (JSONL)")
      ->required();
  imp->add_option("--out", im->out, "Output folder; results go to OUT/<model>/")
      ->capture_default_str();
  imp->add_flag("--allow-incomplete-zip", im->allow_incomplete,
                "Write the upload zip even when some questions have no answer");
  imp->add_flag("--replace", im->replace,
                "Replace another run's result in OUT/<model> (as `run --replace`)");

  return {batch, [exp, ex, ex_out, im]() -> int {
            if (std::getenv("MEDEVAL_LOG_LEVEL") == nullptr) SetLogLevel(LogLevel::kWarning);
            if (exp->parsed()) {
              SuiteSelection sel;
              v1::RequestParams params;
              if (int c = ex->Resolve("export", &sel, &params); c != kExitOk) return c;
              int code = kExitOk;
              auto suite = LoadSuiteForRun(sel, std::cerr, &code);
              if (!suite.ok()) {
                std::cerr << "medeval batch export: " << suite.status().message() << "\n";
                return code;
              }
              ExportCounts counts;
              absl::Status st =
                  WriteBatchInput(*suite, ex->model, params, sel.pdf,
                                  JoinPath(*ex_out, ".medeval/cache/pdf"), std::cout, &counts);
              if (!st.ok()) {
                std::cerr << "medeval batch export: " << st.message() << "\n";
                return kExitFailed;
              }
              std::cerr << "medeval batch export: " << counts.lines << " requests, " << counts.bytes
                        << " bytes\n";
              return kExitOk;
            }
            BatchImportOptions o;
            if (int c = im->suite.Resolve("import", &o.suite, &o.params); c != kExitOk) return c;
            o.model = im->suite.model;
            o.limits = im->suite.request.Limits();
            o.price = im->suite.request.Price();
            o.results = im->results;
            o.out_dir = im->out;
            o.allow_incomplete_zip = im->allow_incomplete;
            o.replace = im->replace;
            return RunBatchImport(o, std::cout, std::cerr);
          }};
}

}  // namespace medeval::cli
