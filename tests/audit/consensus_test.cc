#include "audit/consensus.h"

#include <random>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace medeval {
namespace {

// Synthetic answer sets: each model answers right with its own probability
// and otherwise picks one of the wrong options at random; `shuffles` answers
// per item, each drawn the same way. Returns the table and fills each model's
// realised accuracy.
VoteTable Synthetic(const std::vector<double>& accuracy, int items, int options, int shuffles,
                    double unreadable, uint32_t seed, std::vector<double>* realised,
                    std::vector<int>* truth) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> u(0, 1);
  VoteTable t;
  t.options.assign(static_cast<size_t>(items), options);
  t.votes.assign(accuracy.size(), std::vector<std::vector<int>>(static_cast<size_t>(items)));
  truth->clear();
  for (int i = 0; i < items; ++i) truth->push_back(static_cast<int>(rng() % options));
  realised->assign(accuracy.size(), 0);
  for (size_t m = 0; m < accuracy.size(); ++m) {
    int right = 0, total = 0;
    for (int i = 0; i < items; ++i) {
      for (int s = 0; s < shuffles; ++s) {
        int v;
        if (u(rng) < unreadable) {
          v = -1;
        } else if (u(rng) < accuracy[m]) {
          v = (*truth)[static_cast<size_t>(i)];
        } else {
          v = static_cast<int>(
              (static_cast<int>((*truth)[static_cast<size_t>(i)]) + 1 + rng() % (options - 1)) %
              options);
        }
        t.votes[m][static_cast<size_t>(i)].push_back(v);
        right += v == (*truth)[static_cast<size_t>(i)] ? 1 : 0;
        ++total;
      }
    }
    (*realised)[m] = double(right) / double(total);
  }
  return t;
}

// The stated tolerance: estimates within 0.05 of the realised accuracy.
constexpr double kTolerance = 0.05;

TEST(ConsensusTest, DawidSkeneRecoversKnownAccuracies) {
  const std::vector<double> acc = {0.92, 0.85, 0.75, 0.65, 0.55, 0.45, 0.35};
  std::vector<double> realised;
  std::vector<int> truth;
  for (uint32_t seed : {1u, 2u, 3u}) {
    VoteTable t = Synthetic(acc, 300, 5, 1, 0.0, seed, &realised, &truth);
    ConsensusFit f = FitConsensus(t);
    for (size_t m = 0; m < acc.size(); ++m) {
      EXPECT_NEAR(f.estimated_accuracy[m], realised[m], kTolerance)
          << "seed " << seed << " model " << m;
    }
    // The consensus is mostly the truth.
    int hits = 0;
    for (size_t i = 0; i < truth.size(); ++i) hits += f.consensus[i] == truth[i] ? 1 : 0;
    EXPECT_GT(hits, 270) << seed;
  }
}

TEST(ConsensusTest, ShuffledRepeatsAndUnreadableAnswers) {
  // Five shuffles per item; 10% of answers name no option and count as wrong.
  const std::vector<double> acc = {0.9, 0.7, 0.6, 0.5, 0.4};
  std::vector<double> realised;
  std::vector<int> truth;
  VoteTable t = Synthetic(acc, 150, 5, 5, 0.1, 7, &realised, &truth);
  ConsensusFit f = FitConsensus(t);
  for (size_t m = 0; m < acc.size(); ++m) {
    EXPECT_NEAR(f.estimated_accuracy[m], realised[m], kTolerance) << m;
    EXPECT_EQ(f.votes[m], 750);
  }
  // Agreement with the others orders the models as their accuracy does.
  for (size_t m = 1; m < acc.size(); ++m) EXPECT_GT(f.agreement[m - 1], f.agreement[m]);
}

TEST(ConsensusTest, AgreementWithTheOthersByHand) {
  // 3 models, 4 items of 3 options. Model 0 always says 0; model 1 says 0,0,1,2;
  // model 2 says 0,1,1,-1 (unreadable on item 3).
  VoteTable t;
  t.options = {3, 3, 3, 3};
  t.votes = {{{0}, {0}, {0}, {0}}, {{0}, {0}, {1}, {2}}, {{0}, {1}, {1}, {-1}}};
  ConsensusFit f = FitConsensus(t);
  EXPECT_EQ(f.consensus, (std::vector<int>{0, 0, 1, -1}));  // item 3: 0 vs 2, a tie
  // Model 0 against {1, 2}: item 0 -> 0 (agree), item 1 -> tie 0/1 (skipped),
  // item 2 -> 1 (disagree), item 3 -> only model 1 reads: 2 (disagree).
  EXPECT_EQ(f.answers[0], 3);
  EXPECT_EQ(f.agree[0], 1);
  // Model 2 against {0, 1}: items 0, 1 -> 0; item 2 tie; item 3 tie. Its
  // answers: 0 (agree), 1 (disagree).
  EXPECT_EQ(f.answers[2], 2);
  EXPECT_EQ(f.agree[2], 1);
  EXPECT_DOUBLE_EQ(f.agreement[2], 0.5);
}

AuditReport ModelReport(const std::string& label, const std::vector<std::string>& choices) {
  AuditReport r;
  r.label = label;
  DatasetAudit d;
  d.dataset = "MedSafety";
  d.rule.format = AnswerFormat::kLetter;
  for (size_t i = 0; i < choices.size(); ++i) {
    AnsweredLine a;
    a.line = static_cast<uint32_t>(i + 1);
    a.question = "问\nA. 甲\nB. 乙\nC. 丙";
    a.choice = choices[i];
    d.lines.push_back(a);
  }
  r.datasets.push_back(d);
  return r;
}

TEST(ConsensusTest, OmittedBelowThreeModelsAndByOptionText) {
  std::vector<AuditReport> two = {ModelReport("a", {"甲", "乙"}), ModelReport("b", {"甲", "丙"})};
  ConsensusReport r = ComputeConsensus(two);
  EXPECT_FALSE(r.computed);
  EXPECT_TRUE(r.datasets.empty());
  two.push_back(ModelReport("c", {"甲", "乙"}));
  r = ComputeConsensus(two);
  ASSERT_TRUE(r.computed);
  EXPECT_EQ(r.models, 3);
  ASSERT_EQ(r.datasets.size(), 1u);
  EXPECT_EQ(r.datasets[0].items, 2);
  EXPECT_EQ(r.datasets[0].items_with_consensus, 2);
  ASSERT_EQ(r.consensus_text[0].size(), 2u);
  EXPECT_EQ(r.consensus_text[0][1].second, "乙");
  // b against {a, c}: 甲 agrees, 丙 does not.
  EXPECT_EQ(r.datasets[0].models[1].agree, 1);
  EXPECT_EQ(r.datasets[0].models[1].answers, 2);
  EXPECT_EQ(r.overall[1].agreement(), 0.5);
  EXPECT_GT(r.overall[0].estimated_accuracy(), r.overall[1].estimated_accuracy());
}

}  // namespace
}  // namespace medeval
