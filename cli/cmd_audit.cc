// `medeval audit PATH...`: completeness, format compliance, shuffled-option
// consistency and reasoning leaks of submissions (ours or any tool's).
#include <iostream>
#include <memory>

#include "audit/audit_output.h"
#include "audit/auditor.h"
#include "audit/submission.h"
#include "cli/audit_inputs.h"
#include "cli/commands.h"
#include "common/file_util.h"
#include "common/suite.h"

namespace medeval::cli {

Command AddAuditCommand(CLI::App& app) {
  struct Flags {
    std::vector<std::string> paths;
    std::string data;
    std::string track;
    std::vector<std::string> labels;
    std::string json = "audit.json";
    bool strict = false;
  };
  auto f = std::make_shared<Flags>();
  CLI::App* sub = app.add_subcommand(
      "audit",
      "Check submissions: completeness, answer formats, consistency under shuffled "
      "options, reasoning leaks; exit 0 only if complete and well-formed");
  sub->add_option("paths", f->paths, "Run folders, submission folders or upload zips")->required();
  sub->add_option("--data", f->data, "The original questions (checks every line against them)");
  sub->add_option("--label", f->labels,
                  "The model's name in the output, one per path in order (default: manifest.json's "
                  "model, else the folder or zip name)")
      ->allow_extra_args(false);
  sub->add_option("--track", f->track, "Track, when the folder name does not tell")
      ->check(CLI::IsMember({"v4-llm", "v4-agent", "v4-vlm", "legacy-llm"}));
  sub->add_option("--json", f->json, "Where to write the full report ('' for nowhere)")
      ->capture_default_str();
  sub->add_flag("--strict", f->strict,
                "Also fail on answers not in their format, reasoning leaks (tagged or not), "
                "answers cut off, a byte order mark and skipped questions");
  return {
      sub, [f]() -> int {
        auto in = LoadAuditInputs(f->paths, f->labels, f->track, f->data);
        if (!in.ok()) {
          std::cerr << "medeval audit: " << in.status().message() << "\n";
          return kExitBadInput;
        }
        nlohmann::ordered_json all = nlohmann::ordered_json::array();
        bool ok = true, unreadable = false;
        for (size_t i = 0; i < in->paths.size(); ++i) {
          auto s = in->Read(i);
          if (!s.ok()) {
            std::cerr << "medeval audit: " << s.status().message() << "\n";
            unreadable = true;
            continue;
          }
          AuditReport r = Audit(*s, in->reference_suite());
          std::cout << AuditTable(r) << "\n";
          ok = ok && r.ok(f->strict);
          all.push_back(AuditJson(r, f->strict));
        }
        if (!f->json.empty() && !all.empty()) {
          auto doc = all.size() == 1 ? all[0] : nlohmann::ordered_json{{"reports", all}};
          absl::Status st = WriteFileAtomic(f->json, doc.dump(2) + "\n", false);
          if (!st.ok()) {
            std::cerr << "medeval audit: " << st.message() << "\n";
            return kExitFailed;
          }
          std::cout << "full report: " << f->json << "\n";
        }
        if (unreadable) return kExitBadInput;
        std::cout << (ok ? "OK: complete and well-formed\n" : "NOT OK: see the problems above\n");
        return ok ? kExitOk : kExitFailed;
      }};
}

}  // namespace medeval::cli
