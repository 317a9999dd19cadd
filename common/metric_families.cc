#include "common/metric_families.h"

namespace medeval {

prometheus::MetricFamily& MetricFamilies::Family(const std::string& name, const std::string& help,
                                                 prometheus::MetricType type) {
  auto [it, fresh] = index_.emplace(name, families_.size());
  if (fresh) {
    prometheus::MetricFamily f;
    f.name = name;
    f.help = help;
    f.type = type;
    families_.push_back(std::move(f));
  }
  return families_[it->second];
}

void MetricFamilies::Declare(const std::string& name, const std::string& help,
                             prometheus::MetricType type) {
  Family(name, help, type);
}

void MetricFamilies::Gauge(const std::string& name, const std::string& help,
                           const MetricLabels& labels, double value) {
  prometheus::ClientMetric m;
  for (const auto& [k, v] : labels) m.label.push_back({k, v});
  m.gauge.value = value;
  Family(name, help, prometheus::MetricType::Gauge).metric.push_back(std::move(m));
}

void MetricFamilies::Counter(const std::string& name, const std::string& help,
                             const MetricLabels& labels, double value) {
  prometheus::ClientMetric m;
  for (const auto& [k, v] : labels) m.label.push_back({k, v});
  m.counter.value = value;
  Family(name, help, prometheus::MetricType::Counter).metric.push_back(std::move(m));
}

std::vector<prometheus::MetricFamily> MetricFamilies::Take() {
  index_.clear();
  return std::move(families_);
}

}  // namespace medeval
