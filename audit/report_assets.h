// The comparison report's stylesheet and script, inlined into every report
// so it opens without network access.
#ifndef MEDEVAL_AUDIT_REPORT_ASSETS_H_
#define MEDEVAL_AUDIT_REPORT_ASSETS_H_

namespace medeval {

extern const char kReportCss[];
// Reads the data from <script id="data" type="application/json"> and renders
// the question browser into #browser.
extern const char kReportJs[];

}  // namespace medeval

#endif  // MEDEVAL_AUDIT_REPORT_ASSETS_H_
