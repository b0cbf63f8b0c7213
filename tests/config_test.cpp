#include <gtest/gtest.h>

#include <fstream>

#include "common/config.h"
#include "common/error.h"
#include "test_util.h"

using namespace ovr;

namespace {
Config make_config() {
  Config c("prog", "prog [options]", "test program");
  c.options().add_options()
      ("lr", po::value<double>()->default_value(1e-3), "learning rate")
      ("name", po::value<std::string>()->default_value("run"), "run name")
      ("steps", po::value<int64_t>()->required(), "steps");
  return c;
}
bool parse(Config& c, std::vector<std::string> args) {
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  return c.parse(int(argv.size()), argv.data());
}
}  // namespace

TEST(Config, CommandLineOverridesConfigFile) {
  const std::string dir = test::temp_dir("config");
  test::write_file(dir + "/run.ini", "lr = 0.5\nname = from_file\nsteps = 7\n");
  Config c = make_config();
  ASSERT_TRUE(parse(c, {"prog", "--config", dir + "/run.ini", "--lr", "0.25"}));
  EXPECT_DOUBLE_EQ(c.get<double>("lr"), 0.25);
  EXPECT_EQ(c.get<std::string>("name"), "from_file");
  EXPECT_EQ(c.get<int64_t>("steps"), 7);
  EXPECT_EQ(c.to_json()["lr"], 0.25);
}

TEST(Config, EffectiveIniLoadsBackToTheSameValues) {
  const std::string dir = test::temp_dir("config_ini");
  Config a = make_config();
  ASSERT_TRUE(parse(a, {"prog", "--steps", "3", "--name", "x y"}));
  test::write_file(dir + "/eff.ini", a.to_ini());
  Config b = make_config();
  ASSERT_TRUE(parse(b, {"prog", "--config", dir + "/eff.ini"}));
  auto from_file = b.to_json();
  from_file.erase("config");
  EXPECT_EQ(a.to_json(), from_file);
  EXPECT_EQ(b.get<std::string>("name"), "x y");
  EXPECT_EQ(b.get<int64_t>("steps"), 3);
}

TEST(Config, UnknownOptionBadValueAndMissingRequiredAreErrors) {
  Config c1 = make_config();
  EXPECT_THROW(parse(c1, {"prog", "--steps", "1", "--nope", "2"}), po::error);
  Config c2 = make_config();
  EXPECT_THROW(parse(c2, {"prog", "--steps", "many"}), po::error);
  Config c3 = make_config();
  EXPECT_THROW(parse(c3, {"prog"}), po::error);
  Config c4 = make_config();
  EXPECT_THROW(parse(c4, {"prog", "--config", "/nonexistent/x.ini"}), ConfigError);
  const std::string dir = test::temp_dir("config_bad");
  test::write_file(dir + "/bad.ini", "steps = 1\nunknown_key = 3\n");
  Config c5 = make_config();
  EXPECT_THROW(parse(c5, {"prog", "--config", dir + "/bad.ini"}), ConfigError);
}

TEST(Config, ByteSizesUseHuggingFaceUnits) {
  EXPECT_EQ(parse_byte_size("5GB", "x"), 5'000'000'000ull);
  EXPECT_EQ(parse_byte_size("2GiB", "x"), 2ull << 30);
  EXPECT_EQ(parse_byte_size("512mb", "x"), 512'000'000ull);
  EXPECT_EQ(parse_byte_size("1000", "x"), 1000ull);
  EXPECT_THROW(parse_byte_size("", "x"), ConfigError);
  EXPECT_THROW(parse_byte_size("5 GB", "x"), ConfigError);
  EXPECT_THROW(parse_byte_size("0", "x"), ConfigError);
  EXPECT_THROW(parse_byte_size("3XB", "x"), ConfigError);
  EXPECT_THROW(parse_byte_size("99999999999999TB", "x"), ConfigError);
}

// Rules every numeric option obeys, from a config file as from the command line: finite reals,
// non-negative counts (or down to a negative "off" default), no negative value wrapped unsigned.
TEST(Config, NumbersAreFiniteAndCountsNonNegative) {
  auto make = [] {
    Config c("prog", "prog [options]", "test program");
    c.options().add_options()
        ("lr", po::value<double>()->default_value(1e-3), "learning rate")
        ("steps", po::value<int64_t>()->default_value(1), "steps")
        ("places", po::value<int>()->default_value(-1), "decimals (-1: off)")
        ("seed", po::value<uint64_t>()->default_value(0), "seed");
    return c;
  };
  auto message = [&](std::vector<std::string> args) -> std::string {
    Config c = make();
    try {
      parse(c, std::move(args));
    } catch (const ConfigError& e) {
      return e.what();
    }
    return "";
  };
  EXPECT_EQ(message({"prog", "--lr", "nan"}), "--lr: must be a finite number, got nan");
  EXPECT_EQ(message({"prog", "--lr", "-inf"}), "--lr: must be a finite number, got -inf");
  EXPECT_EQ(message({"prog", "--steps", "-2"}), "--steps: must be >= 0, got -2");
  EXPECT_EQ(message({"prog", "--places", "-2"}), "--places: must be >= -1, got -2");
  EXPECT_EQ(message({"prog", "--seed", "-1"}), "--seed: must be between 0 and 2^63 - 1");
  EXPECT_EQ(message({"prog", "--places", "-1", "--steps", "0", "--lr", "-0.5", "--seed", "9223372036854775807"}), "");
  const std::string dir = test::temp_dir("config_numbers");
  test::write_file(dir + "/nan.ini", "lr = nan\n");
  EXPECT_EQ(message({"prog", "--config", dir + "/nan.ini"}), "--lr: must be a finite number, got nan");
}
