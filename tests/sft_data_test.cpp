// SFT data: JSONL rows -> documents (errors name file and line), the seeded epoch order, packing,
// the training plan and its cursor, and the learning-rate schedules.
#include <gtest/gtest.h>

#include <fstream>
#include <set>

#include "common/error.h"
#include "test_util.h"
#include "train/lr_schedule.h"
#include "common/seeded_order.h"
#include "train/sft_data.h"

using namespace ovr;

namespace {

const std::string kFixtures = OVR_TEST_FIXTURES;
const std::string kRepo = OVR_REPO;
const std::string kTokenizer = kRepo + "/inputs/tiny/tokenizer.json";

const text::Tokenizer& tokenizer() {
  static const text::Tokenizer tok(kTokenizer);
  return tok;
}

train::SftDataOptions options(int64_t seq_len = 512) {
  train::SftDataOptions o;
  o.seq_len = seq_len;
  return o;
}

TEST(SftData, ReadsConversationsWithLossOnAssistantTokensOnly) {
  const auto data = train::load_sft_jsonl({kRepo + "/inputs/tiny/sft_arith.jsonl"}, tokenizer(), nullptr, options());
  ASSERT_EQ(data.docs.size(), 96u);
  const auto& doc = data.docs[0];  // system + user + assistant
  EXPECT_EQ(doc.source, kRepo + "/inputs/tiny/sft_arith.jsonl:1");
  std::string masked;
  for (size_t i = 0; i < doc.ids.size(); ++i)
    if (doc.loss_mask[i]) masked += tokenizer().decode({doc.ids[i]});
  EXPECT_EQ(masked, "see 6 6. 6+6=12. check 12-6=6. \\boxed{12}<|im_end|>");
}

TEST(SftData, MalformedRowIsAnErrorNamingFileAndLine) {
  const std::string bad = kFixtures + "/sft/bad_rows.jsonl";
  try {
    train::load_sft_jsonl({bad}, tokenizer(), nullptr, options());
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(bad + ":2: not valid JSON"), std::string::npos) << e.what();
  }
  auto o = options();
  o.skip_bad_rows = true;
  const auto data = train::load_sft_jsonl({bad}, tokenizer(), nullptr, o);
  EXPECT_EQ(data.bad_rows, 3);
  EXPECT_EQ(data.docs.size(), 3u);
}

TEST(SftData, RowWithoutAssistantOrWithImageForATextModelIsRejected) {
  const std::string dir = test::temp_dir("sft_rows");
  test::write_file(dir + "/a.jsonl", "{\"messages\": [{\"role\": \"user\", \"content\": [{\"type\": \"image\", \"image\": \"x.png\"}]},"
                                     " {\"role\": \"assistant\", \"content\": \"y\"}]}\n");
  try {
    train::load_sft_jsonl({dir + "/a.jsonl"}, tokenizer(), nullptr, options());
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("a.jsonl:1: has an image, but this model has no vision tower"), std::string::npos)
        << e.what();
  }
  EXPECT_THROW(train::load_sft_jsonl({dir + "/missing.jsonl"}, tokenizer(), nullptr, options()), Error);
}

TEST(SftData, OverlongDocumentsAreTruncatedOrDroppedAndCounted) {
  auto o = options(70);  // rows are 100-112 tokens, the answer starts at about 50
  const auto cut = train::load_sft_jsonl({kRepo + "/inputs/tiny/sft_arith.jsonl"}, tokenizer(), nullptr, o);
  EXPECT_EQ(cut.truncated, 96);
  for (const auto& d : cut.docs) EXPECT_EQ(d.ids.size(), 70u);
  o.overlong = "drop";
  EXPECT_THROW(train::load_sft_jsonl({kRepo + "/inputs/tiny/sft_arith.jsonl"}, tokenizer(), nullptr, o), Error);  // nothing left
  o.seq_len = 105;
  const auto kept = train::load_sft_jsonl({kRepo + "/inputs/tiny/sft_arith.jsonl"}, tokenizer(), nullptr, o);
  EXPECT_GT(kept.dropped_overlong, 0);
  EXPECT_EQ(kept.dropped_overlong + int64_t(kept.docs.size()), 96);
  o.overlong = "keep";
  EXPECT_THROW(train::load_sft_jsonl({kRepo + "/inputs/tiny/sft_arith.jsonl"}, tokenizer(), nullptr, o), ConfigError);
}

TEST(SftPlan, EpochOrderIsASeededPermutationThatChangesEachEpoch) {
  const auto a = epoch_order(1000, 42, 0), b = epoch_order(1000, 42, 0);
  const auto c = epoch_order(1000, 42, 1), d = epoch_order(1000, 43, 0);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  EXPECT_NE(a, d);
  EXPECT_EQ(std::set<int64_t>(a.begin(), a.end()).size(), 1000u);
  // Fixed values: the order must not change with the compiler or standard library.
  EXPECT_EQ(epoch_order(5, 0, 0), (std::vector<int64_t>{2, 3, 1, 4, 0}));
}

TEST(SftPlan, PackingFillsRowsInOrderWithoutExceedingSeqLen) {
  const auto data = train::load_sft_jsonl({kRepo + "/inputs/tiny/sft_arith.jsonl"}, tokenizer(), nullptr, options());
  const auto order = epoch_order(int64_t(data.docs.size()), 1, 0);
  const auto rows = train::pack_rows(order, data.docs, 512, true);
  std::vector<int64_t> seen;
  for (const auto& r : rows) {
    int64_t tokens = 0;
    for (int64_t d : r.docs) tokens += int64_t(data.docs[size_t(d)].ids.size()), seen.push_back(d);
    EXPECT_EQ(tokens, r.tokens);
    EXPECT_LE(r.tokens, 512);
  }
  EXPECT_EQ(seen, order);  // every document once, in the epoch's order
  EXPECT_LT(rows.size(), data.docs.size() / 2);
  EXPECT_EQ(train::pack_rows(order, data.docs, 512, false).size(), data.docs.size());
}

TEST(SftPlan, CursorLocatesEveryStepAcrossEpochs) {
  const auto data = train::load_sft_jsonl({kRepo + "/inputs/tiny/sft_arith.jsonl"}, tokenizer(), nullptr, options());
  const auto plan = train::plan_training(data, 3, 7, 160, true, 5);
  int64_t step = 0;
  for (size_t e = 0; e < plan.epochs.size(); ++e) {
    EXPECT_EQ(plan.steps_per_epoch[e], int64_t(plan.epochs[e].size()) / 5);
    for (int64_t k = 0; k < plan.steps_per_epoch[e]; ++k, ++step) {
      int64_t epoch, row;
      plan.locate(step, 5, &epoch, &row);
      EXPECT_EQ(epoch, int64_t(e));
      EXPECT_EQ(row, k * 5);
    }
  }
  EXPECT_EQ(step, plan.total_steps);
  int64_t epoch, row;
  EXPECT_THROW(plan.locate(plan.total_steps, 5, &epoch, &row), Error);
}

TEST(LrSchedule, WarmupThenCosineLinearOrConstantAsHuggingFace) {
  train::LrSchedule s{"cosine", 1.0, 10, 110, 0.0};
  EXPECT_DOUBLE_EQ(s.at(0), 0.0);
  EXPECT_DOUBLE_EQ(s.at(5), 0.5);
  EXPECT_DOUBLE_EQ(s.at(10), 1.0);
  EXPECT_NEAR(s.at(60), 0.5, 1e-12);
  EXPECT_NEAR(s.at(110), 0.0, 1e-12);
  s.min_lr_ratio = 0.1;
  EXPECT_NEAR(s.at(60), 0.55, 1e-12);
  EXPECT_NEAR(s.at(110), 0.1, 1e-12);
  train::LrSchedule lin{"linear", 2.0, 0, 100, 0.0};
  EXPECT_DOUBLE_EQ(lin.at(0), 2.0);
  EXPECT_NEAR(lin.at(25), 1.5, 1e-12);
  train::LrSchedule c{"constant", 3.0, 4, 100, 0.0};
  EXPECT_DOUBLE_EQ(c.at(2), 1.5);
  EXPECT_DOUBLE_EQ(c.at(99), 3.0);
  EXPECT_THROW((train::LrSchedule{"step", 1.0, 0, 1, 0}.validate()), ConfigError);
  EXPECT_THROW((train::LrSchedule{"cosine", -1.0, 0, 1, 0}.validate()), ConfigError);
}

}  // namespace
