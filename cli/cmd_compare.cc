// `medeval compare PATH... --html report.html`: models side by side.
#include <iostream>
#include <memory>

#include "audit/auditor.h"
#include "audit/compare_report.h"
#include "audit/leaderboard.h"
#include "audit/submission.h"
#include "cli/audit_inputs.h"
#include "cli/commands.h"
#include "common/file_util.h"
#include "common/suite.h"

namespace medeval::cli {

Command AddCompareCommand(CLI::App& app) {
  struct Flags {
    std::vector<std::string> paths;
    std::string html;
    std::string markdown;
    std::string scores;
    std::string data;
    std::string track;
    std::vector<std::string> labels;
  };
  auto f = std::make_shared<Flags>();
  CLI::App* sub = app.add_subcommand(
      "compare", "Compare models' submissions: a self-contained HTML report (and Markdown)");
  sub->add_option("paths", f->paths, "Run folders, submission folders or upload zips")->required();
  sub->add_option("--html", f->html, "Write the HTML report here");
  sub->add_option("--markdown", f->markdown, "Write the tables as Markdown here");
  sub->add_option("--scores", f->scores,
                  "Platform scores (CSV: model,task,score or model + one column per task) for "
                  "the leaderboard");
  sub->add_option("--data", f->data, "The original questions (completeness against them)");
  sub->add_option("--label", f->labels,
                  "The model's name in the output, one per path in order (default: manifest.json's "
                  "model, else the folder or zip name)")
      ->allow_extra_args(false);
  sub->add_option("--track", f->track, "Track, when the folder names do not tell")
      ->check(CLI::IsMember({"v4-llm", "v4-agent", "v4-vlm", "legacy-llm"}));
  return {sub, [f]() -> int {
            if (f->html.empty() && f->markdown.empty()) {
              std::cerr << "medeval compare: give --html FILE and/or --markdown FILE\n";
              return kExitBadInput;
            }
            auto in = LoadAuditInputs(f->paths, f->labels, f->track, f->data);
            if (!in.ok()) {
              std::cerr << "medeval compare: " << in.status().message() << "\n";
              return kExitBadInput;
            }
            std::optional<Scores> scores;
            if (!f->scores.empty()) {
              auto text = ReadFile(f->scores);
              auto parsed = text.ok() ? ParseScoresCsv(*text, f->scores)
                                      : absl::StatusOr<Scores>(text.status());
              if (!parsed.ok()) {
                std::cerr << "medeval compare: --scores: " << parsed.status().message() << "\n";
                return kExitBadInput;
              }
              scores = std::move(*parsed);
            }
            std::vector<AuditReport> reports;
            for (size_t i = 0; i < in->paths.size(); ++i) {
              auto s = in->Read(i);
              if (!s.ok()) {
                std::cerr << "medeval compare: " << s.status().message() << "\n";
                return kExitBadInput;
              }
              reports.push_back(Audit(*s, in->reference_suite()));
            }
            const Scores* sc = scores.has_value() ? &*scores : nullptr;
            if (!f->html.empty()) {
              absl::Status st = WriteFileAtomic(f->html, CompareHtml(reports, sc), false);
              if (!st.ok()) {
                std::cerr << "medeval compare: " << st.message() << "\n";
                return kExitFailed;
              }
              std::cout << "wrote " << f->html << "\n";
            }
            if (!f->markdown.empty()) {
              absl::Status st = WriteFileAtomic(f->markdown, CompareMarkdown(reports, sc), false);
              if (!st.ok()) {
                std::cerr << "medeval compare: " << st.message() << "\n";
                return kExitFailed;
              }
              std::cout << "wrote " << f->markdown << "\n";
            }
            return kExitOk;
          }};
}

}  // namespace medeval::cli
