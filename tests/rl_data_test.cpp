// RL data plumbing: the rollout file round trip, prompts (errors name file and line), the
// iteration's prompts and the length curriculum.
#include <gtest/gtest.h>

#include <set>

#include "common/error.h"
#include "io/hdf5_checkpoint.h"
#include "engine/prompt.h"
#include "rl/curriculum.h"
#include "rl/rollout_store.h"
#include "test_util.h"

using namespace ovr;

namespace {

rl::Rollouts sample_rollouts() {
  rl::Rollouts r;
  r.iteration = 3;
  r.policy_step = 3;
  r.seed = 42;
  r.max_new_tokens = 128;
  r.groups = {{7, "q7", {1, 2, 3}, "\\frac{1}{2}", {}}, {2, "", {4}, "5", {"a.png", "b.jpg"}}};
  r.samples = {{0, 0, 2, {10, 11}, {-0.5f, -1.5f}, 1.0f, "eos", "1/2", "correct"},
               {0, 1, 0, {}, {}, 0.0f, "length", "", "truncated"},
               {1, 0, 3, {12, 13, 14}, {-0.1f, -0.2f, -0.3f}, 0.0f, "eos", "4", "wrong"}};
  return r;
}

TEST(RolloutStore, WritesAndReadsBackEveryField) {
  const std::string path = test::temp_dir("rollouts") + "/iter_000003.h5";
  const rl::Rollouts w = sample_rollouts();
  rl::write_rollouts(path, MPI_COMM_SELF, w);
  const rl::Rollouts r = rl::read_rollouts(path);
  EXPECT_EQ(r.iteration, 3);
  EXPECT_EQ(r.policy_step, 3);
  EXPECT_EQ(r.seed, 42u);
  EXPECT_EQ(r.max_new_tokens, 128);
  ASSERT_EQ(r.groups.size(), 2u);
  EXPECT_EQ(r.groups[0].prompt_tokens, (std::vector<int32_t>{1, 2, 3}));
  EXPECT_EQ(r.groups[0].answer, "\\frac{1}{2}");
  EXPECT_EQ(r.groups[1].images, (std::vector<std::string>{"a.png", "b.jpg"}));
  EXPECT_TRUE(r.groups[0].images.empty());
  EXPECT_EQ(r.groups[1].dataset_index, 2);
  ASSERT_EQ(r.samples.size(), 3u);
  EXPECT_EQ(r.samples[2].tokens, (std::vector<int32_t>{12, 13, 14}));
  EXPECT_EQ(r.samples[2].logprobs, (std::vector<float>{-0.1f, -0.2f, -0.3f}));
  EXPECT_EQ(r.samples[2].group, 1);
  EXPECT_TRUE(r.samples[1].tokens.empty());
  EXPECT_EQ(r.samples[1].finish_reason, "length");
  EXPECT_EQ(r.samples[0].extracted, "1/2");
  EXPECT_EQ(r.samples[0].reward, 1.0f);
  EXPECT_EQ(r.samples[2].reward_reason, "wrong");
}

TEST(RolloutStore, RefusesACheckpointThatIsNotARolloutFile) {
  const std::string dir = test::temp_dir("not_rollouts");
  {
    io::CheckpointWriter w(dir + "/c.h5", MPI_COMM_SELF, io::CheckpointAttrs{});
    w.commit(false);
  }
  try {
    rl::read_rollouts(dir + "/c.h5");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("not a rollout file"), std::string::npos) << e.what();
  }
}

TEST(Prompts, ReadsTextAndMessageRowsAndNamesTheLineOfABadOne) {
  const std::string dir = test::temp_dir("prompts");
  test::write_file(dir + "/p.jsonl",
                   "{\"id\": \"a\", \"prompt\": \"What is 1+1?\", \"answer\": \"2\"}\n"
                   "\n"
                   "{\"prompt\": \"Sum?\", \"image\": \"img/x.png\", \"answer\": 3}\n"
                   "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"answer\": \"x\"}\n");
  const auto rows = engine::load_prompts(dir + "/p.jsonl");
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0].id, "a");
  EXPECT_EQ(rows[1].id, "3");  // the line number when there is no id
  EXPECT_EQ(rows[1].answer, "3");
  EXPECT_EQ(rows[1].images, (std::vector<std::string>{dir + "/img/x.png"}));
  EXPECT_EQ(rows[2].messages.size(), 1u);
  test::write_file(dir + "/bad.jsonl", "{\"prompt\": \"x\", \"answer\": \"1\"}\n{\"prompt\": \"no answer\"}\n");
  try {
    engine::load_prompts(dir + "/bad.jsonl");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("bad.jsonl:2: no \"answer\""), std::string::npos) << e.what();
  }
}

TEST(Prompts, EachIterationTakesTheNextPromptsOfSeededEpochs) {
  // 10 rows, 4 per iteration: iterations 0, 1 and half of 2 cover epoch 0 exactly once.
  std::multiset<int64_t> seen;
  for (int k = 0; k < 2; ++k)
    for (int64_t r : rl::iteration_rows(10, 4, k, 7)) seen.insert(r);
  const auto third = rl::iteration_rows(10, 4, 2, 7);
  seen.insert(third[0]), seen.insert(third[1]);
  for (int64_t r = 0; r < 10; ++r) EXPECT_EQ(seen.count(r), 1u) << r;
  EXPECT_EQ(rl::iteration_rows(10, 4, 1, 7), rl::iteration_rows(10, 4, 1, 7));
  EXPECT_NE(rl::iteration_rows(10, 4, 1, 7), rl::iteration_rows(10, 4, 1, 8));
}

TEST(LengthSchedule, ThePapersCurriculum) {
  const auto s = rl::parse_length_schedule("0:24576,300:32768,700:49152");
  EXPECT_EQ(s.at(0), 24576);
  EXPECT_EQ(s.at(299), 24576);
  EXPECT_EQ(s.at(300), 32768);
  EXPECT_EQ(s.at(10000), 49152);
  for (const char* bad : {"", "100:5", "0:5,0:6", "0:x", "0:-1", "0:5;9:6", "0:5,"})
    EXPECT_THROW(rl::parse_length_schedule(bad), ConfigError) << bad;
}

}  // namespace
