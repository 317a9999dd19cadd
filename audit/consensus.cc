#include "audit/consensus.h"

#include <algorithm>
#include <cmath>
#include <map>

#include "audit/answer_reading.h"
#include "common/choice.h"

namespace medeval {
namespace {

// A model's weight of 1 on an item, split over its readable votes.
std::vector<double> Shares(const std::vector<int>& votes, int k) {
  std::vector<double> q(static_cast<size_t>(k), 0.0);
  int readable = 0;
  for (int v : votes) readable += v >= 0 ? 1 : 0;
  if (readable == 0) return {};
  for (int v : votes) {
    if (v >= 0) q[static_cast<size_t>(v)] += 1.0 / readable;
  }
  return q;
}

// The index of the unique largest score above zero, else -1.
int Plurality(const std::vector<double>& score) {
  int best = -1;
  bool tie = false;
  for (size_t c = 0; c < score.size(); ++c) {
    if (score[c] <= 1e-12) continue;
    if (best < 0 || score[c] > score[static_cast<size_t>(best)] + 1e-9) {
      best = static_cast<int>(c);
      tie = false;
    } else if (std::fabs(score[c] - score[static_cast<size_t>(best)]) <= 1e-9) {
      tie = true;
    }
  }
  return tie ? -1 : best;
}

}  // namespace

ConsensusFit FitConsensus(const VoteTable& t) {
  const size_t models = t.votes.size(), items = t.options.size();
  ConsensusFit f;
  f.consensus.assign(items, -1);
  f.answers.assign(models, 0);
  f.agree.assign(models, 0);
  f.agreement.assign(models, -1);
  f.p.assign(models, 0.5);
  f.estimated_accuracy.assign(models, -1);
  f.votes.assign(models, 0);
  f.expected_correct.assign(models, 0);
  // q[m][i]: model m's shares on item i (empty: no readable vote).
  std::vector<std::vector<std::vector<double>>> q(models, std::vector<std::vector<double>>(items));
  std::vector<std::vector<double>> score(items);
  for (size_t i = 0; i < items; ++i) {
    score[i].assign(static_cast<size_t>(t.options[i]), 0.0);
    for (size_t m = 0; m < models; ++m) {
      if (i < t.votes[m].size()) q[m][i] = Shares(t.votes[m][i], t.options[i]);
      for (size_t c = 0; c < q[m][i].size(); ++c) score[i][c] += q[m][i][c];
    }
    f.consensus[i] = Plurality(score[i]);
  }
  // Agreement with the others' consensus.
  for (size_t m = 0; m < models; ++m) {
    for (size_t i = 0; i < items && i < t.votes[m].size(); ++i) {
      std::vector<double> others = score[i];
      for (size_t c = 0; c < q[m][i].size(); ++c) others[c] -= q[m][i][c];
      const int c = Plurality(others);
      if (c < 0) continue;
      for (int v : t.votes[m][i]) {
        ++f.answers[m];
        f.agree[m] += v == c ? 1 : 0;
      }
    }
    if (f.answers[m] > 0) f.agreement[m] = double(f.agree[m]) / double(f.answers[m]);
  }
  // One-coin Dawid-Skene by EM, started from the weighted vote shares.
  std::vector<std::vector<double>> post(items);
  for (size_t i = 0; i < items; ++i) {
    double sum = 0;
    for (double s : score[i]) sum += s;
    post[i].assign(score[i].size(), sum > 0 ? 0.0 : 1.0 / double(score[i].size()));
    for (size_t c = 0; c < score[i].size() && sum > 0; ++c) post[i][c] = score[i][c] / sum;
  }
  for (f.iterations = 1; f.iterations <= 500; ++f.iterations) {
    double change = 0;
    for (size_t m = 0; m < models; ++m) {
      double num = 0, den = 0;
      for (size_t i = 0; i < items; ++i) {
        if (q[m][i].empty()) continue;
        den += 1;
        for (size_t c = 0; c < q[m][i].size(); ++c) num += q[m][i][c] * post[i][c];
      }
      const double p = den > 0 ? std::clamp(num / den, 1e-3, 1 - 1e-3) : 0.5;
      change = std::max(change, std::fabs(p - f.p[m]));
      f.p[m] = p;
    }
    for (size_t i = 0; i < items; ++i) {
      const size_t k = post[i].size();
      std::vector<double> log_post(k, 0.0);
      bool any = false;
      for (size_t m = 0; m < models; ++m) {
        if (q[m][i].empty()) continue;
        any = true;
        const double right = std::log(f.p[m]);
        const double wrong = std::log((1 - f.p[m]) / double(k - 1));
        for (size_t c = 0; c < k; ++c) {
          // Shares on c count as right, the rest as wrong.
          log_post[c] += q[m][i][c] * right + (1 - q[m][i][c]) * wrong;
        }
      }
      if (!any) continue;
      const double top = *std::max_element(log_post.begin(), log_post.end());
      double sum = 0;
      for (double& l : log_post) sum += (l = std::exp(l - top));
      for (size_t c = 0; c < k; ++c) post[i][c] = log_post[c] / sum;
    }
    if (change < 1e-7) break;
  }
  for (size_t m = 0; m < models; ++m) {
    for (size_t i = 0; i < items && i < t.votes[m].size(); ++i) {
      for (int v : t.votes[m][i]) {
        ++f.votes[m];
        if (v >= 0) f.expected_correct[m] += post[i][static_cast<size_t>(v)];
      }
    }
    if (f.votes[m] > 0) f.estimated_accuracy[m] = f.expected_correct[m] / double(f.votes[m]);
  }
  return f;
}

ConsensusReport ComputeConsensus(const std::vector<AuditReport>& reports) {
  ConsensusReport out;
  out.models = static_cast<int>(reports.size());
  if (out.models < kMinConsensusModels) return out;
  out.computed = true;
  out.overall.resize(reports.size());
  for (size_t m = 0; m < reports.size(); ++m) out.overall[m].model = reports[m].label;
  // Datasets by name, one slot per model.
  std::map<std::string, std::vector<const DatasetAudit*>> by_name;
  for (size_t m = 0; m < reports.size(); ++m) {
    for (const DatasetAudit& d : reports[m].datasets) {
      if (!IsChoiceFormat(d.rule.format)) continue;
      auto& slots = by_name[d.dataset];
      slots.resize(reports.size(), nullptr);
      slots[m] = &d;
    }
  }
  for (auto& [name, slots] : by_name) {
    slots.resize(reports.size(), nullptr);
    VoteTable table;
    table.votes.assign(reports.size(), {});
    std::map<std::string, size_t> item_of;            // "id 7" or "line 12"
    std::vector<std::map<std::string, int>> classes;  // per item: choice text -> index
    std::vector<uint32_t> first_line;
    for (size_t m = 0; m < slots.size(); ++m) {
      if (slots[m] == nullptr) continue;
      const bool multi = IsMultiChoiceFormat(slots[m]->rule.format);
      for (const AnsweredLine& a : slots[m]->lines) {
        const std::string key = a.group.empty() ? "line " + std::to_string(a.line) : a.group;
        auto [it, added] = item_of.emplace(key, item_of.size());
        const size_t i = it->second;
        if (added) {
          const int n = static_cast<int>(ParseOptions(a.question).size());
          const int k = multi ? (n >= 2 && n <= 20 ? (1 << n) - 1 : 2) : std::max(n, 2);
          table.options.push_back(k);
          classes.emplace_back();
          first_line.push_back(a.line);
        }
        auto& votes = table.votes[m];
        if (votes.size() < table.options.size()) votes.resize(table.options.size());
        int v = -1;
        if (!a.choice.empty()) {
          auto [c, fresh] = classes[i].emplace(a.choice, static_cast<int>(classes[i].size()));
          (void)fresh;
          v = c->second;
          table.options[i] = std::max(table.options[i], static_cast<int>(classes[i].size()) + 1);
        }
        votes[i].push_back(v);
      }
    }
    for (auto& v : table.votes) v.resize(table.options.size());
    ConsensusFit fit = FitConsensus(table);
    DatasetConsensus dc;
    dc.dataset = name;
    dc.items = static_cast<int64_t>(table.options.size());
    std::vector<std::pair<uint32_t, std::string>> texts;
    for (size_t i = 0; i < table.options.size(); ++i) {
      if (fit.consensus[i] < 0) continue;
      ++dc.items_with_consensus;
      for (const auto& [text, c] : classes[i]) {
        if (c == fit.consensus[i]) texts.push_back({first_line[i], text});
      }
    }
    for (size_t m = 0; m < reports.size(); ++m) {
      ModelConsensus mc;
      mc.model = reports[m].label;
      mc.answers = fit.answers[m];
      mc.agree = fit.agree[m];
      mc.votes = fit.votes[m];
      mc.expected_correct = fit.expected_correct[m];
      out.overall[m].answers += mc.answers;
      out.overall[m].agree += mc.agree;
      out.overall[m].votes += mc.votes;
      out.overall[m].expected_correct += mc.expected_correct;
      dc.models.push_back(std::move(mc));
    }
    out.datasets.push_back(std::move(dc));
    out.consensus_text.push_back(std::move(texts));
  }
  return out;
}

}  // namespace medeval
