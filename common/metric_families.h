// Building Prometheus metric families at scrape time, from a snapshot of a
// component's state (gauges and counters it already keeps), rather than
// updating metric objects on every change in hot paths.
//
// Thread-safety: a MetricFamilies is a local value; not shared.
#ifndef MEDEVAL_COMMON_METRIC_FAMILIES_H_
#define MEDEVAL_COMMON_METRIC_FAMILIES_H_

#include <prometheus/metric_family.h>

#include <map>
#include <string>
#include <utility>
#include <vector>

namespace medeval {

using MetricLabels = std::vector<std::pair<std::string, std::string>>;

class MetricFamilies {
 public:
  void Gauge(const std::string& name, const std::string& help, const MetricLabels& labels,
             double value);
  void Counter(const std::string& name, const std::string& help, const MetricLabels& labels,
               double value);
  // Families in the order first added; a family without samples is kept (its
  // HELP and TYPE tell a scraper the metric exists).
  std::vector<prometheus::MetricFamily> Take();
  // Declares a family that may get no samples this scrape.
  void Declare(const std::string& name, const std::string& help, prometheus::MetricType type);

 private:
  prometheus::MetricFamily& Family(const std::string& name, const std::string& help,
                                   prometheus::MetricType type);
  std::vector<prometheus::MetricFamily> families_;
  std::map<std::string, size_t> index_;
};

}  // namespace medeval

#endif  // MEDEVAL_COMMON_METRIC_FAMILIES_H_
