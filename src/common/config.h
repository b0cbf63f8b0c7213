// Configuration: Boost.Program_options with CLI flags plus an INI file (--config FILE), where a
// flag on the command line overrides the file. Every executable shares --help, --config,
// --print-config and --log-all-ranks; it adds its own options to `options()`.
#pragma once
#include <boost/program_options.hpp>
#include <nlohmann/json.hpp>
#include <string>

namespace ovr {

namespace po = boost::program_options;

class Config {
 public:
  // usage: e.g. "ovr_average --output OUT IN1 IN2 ... [options]"; about: what the program does.
  Config(std::string program, std::string usage, std::string about);

  po::options_description& options() { return own_; }
  // Positional arguments are collected into option `name` (max_count -1 = unlimited).
  void positional(const std::string& name, int max_count);

  // Parses the command line and the --config file. Returns false when the program should stop
  // with status 0 because --help or --print-config was handled (printed on rank 0). Bad input
  // throws (ConfigError or a Boost.Program_options error), which run_main maps to exit status 2.
  bool parse(int argc, char** argv);

  const po::variables_map& vm() const { return vm_; }
  bool has(const std::string& name) const { return vm_.count(name) > 0; }
  template <class T>
  T get(const std::string& name) const { return vm_[name].as<T>(); }

  // The effective configuration (every option with its value, defaults included), as JSON for
  // output files and as INI text for --print-config (loadable again with --config).
  nlohmann::json to_json() const;
  std::string to_ini() const;
  std::string help_text() const;

 private:
  std::string program_, usage_, about_;
  po::options_description common_{"Common options"};
  po::options_description own_;
  po::positional_options_description positional_;
  std::string positional_name_;
  po::variables_map vm_;

  void check_numbers(const po::options_description& all) const;
};

// "5GB" -> 5e9, "512MiB" -> 512*2^20, "1000" -> 1000 (Hugging Face uses powers of ten for
// "GB"). Throws ConfigError naming `what` for anything else.
uint64_t parse_byte_size(const std::string& text, const std::string& what);

}  // namespace ovr
