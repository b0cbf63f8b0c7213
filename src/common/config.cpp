#include "common/config.h"

#include <cctype>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <iostream>
#include <sstream>

#include "common/error.h"
#include "common/log.h"
#include "common/mpi_runtime.h"

namespace ovr {

Config::Config(std::string program, std::string usage, std::string about)
    : program_(std::move(program)), usage_(std::move(usage)), about_(std::move(about)),
      own_(program_ + " options") {
  common_.add_options()
      ("help,h", "print this help (every option with its default) and exit")
      ("config", po::value<std::string>(), "read options from this INI file (key = value); command-line flags override it")
      ("print-config", "print the effective configuration as an INI file and exit")
      ("log-all-ranks", po::bool_switch()->default_value(false), "every MPI rank prints its log lines (default: rank 0 only)");
}

void Config::positional(const std::string& name, int max_count) {
  positional_.add(name.c_str(), max_count);
  positional_name_ = name;
}

std::string Config::help_text() const {
  std::ostringstream ss;
  ss << "Usage: " << usage_ << "\n\n" << about_ << "\n\n" << own_ << "\n" << common_;
  ss << "\nExit status: 0 success, 1 failure (bad input, I/O), 2 bad option or option value.\n";
  return ss.str();
}

bool Config::parse(int argc, char** argv) {
  po::options_description all;
  all.add(own_).add(common_);
  // Command line first: Program_options keeps the first value stored for an option, so the
  // file read afterwards only fills in what the command line left unset.
  po::store(po::command_line_parser(argc, argv).options(all).positional(positional_).run(), vm_);
  if (vm_.count("help")) {
    if (world_rank() == 0) std::cout << help_text();
    return false;
  }
  if (vm_.count("config")) {
    const std::string path = vm_["config"].as<std::string>();
    std::ifstream in(path);
    if (!in) throw ConfigError("cannot read config file '" + path + "'");
    try {
      po::store(po::parse_config_file(in, all, /*allow_unregistered=*/false), vm_);
    } catch (const po::error& e) {
      throw ConfigError("config file '" + path + "': " + e.what());
    }
  }
  po::notify(vm_);  // required options and notifiers
  check_numbers(all);
  log::set_all_ranks(vm_["log-all-ranks"].as<bool>());
  if (vm_.count("print-config")) {
    if (world_rank() == 0) std::cout << to_ini();
    return false;
  }
  return true;
}

// Rules every numeric option obeys, so each program checks only what is particular to it:
// a real number is finite (no option means anything by nan or inf), and an integer is a count,
// never negative -- except where the default is a negative "off" sentinel (e.g.
// --decimal-places -1), which is then the smallest value allowed. Boost parses "-1" into an
// unsigned option as 2^64 - 1, so an unsigned value past 2^63 is taken for a negative one.
void Config::check_numbers(const po::options_description& all) const {
  for (const auto& [name, value] : vm_) {
    if (value.defaulted()) continue;
    const boost::any& v = value.value();
    boost::any fallback;
    if (const auto* d = all.find_nothrow(name, false)) d->semantic()->apply_default(fallback);
    auto lowest_of = [&](auto zero) {
      const auto* def = boost::any_cast<decltype(zero)>(&fallback);
      return def && *def < 0 ? *def : zero;
    };
    if (const auto* x = boost::any_cast<double>(&v); x && !std::isfinite(*x))
      throw ConfigError("--" + name + ": must be a finite number, got " + std::to_string(*x));
    if (const auto* x = boost::any_cast<uint64_t>(&v); x && *x > uint64_t(INT64_MAX))
      throw ConfigError("--" + name + ": must be between 0 and 2^63 - 1");
    if (const auto* x = boost::any_cast<int64_t>(&v); x && *x < lowest_of(int64_t(0)))
      throw ConfigError("--" + name + ": must be >= " + std::to_string(lowest_of(int64_t(0))) + ", got " + std::to_string(*x));
    if (const auto* x = boost::any_cast<int>(&v); x && *x < lowest_of(0))
      throw ConfigError("--" + name + ": must be >= " + std::to_string(lowest_of(0)) + ", got " + std::to_string(*x));
  }
}

namespace {
nlohmann::json any_to_json(const boost::any& v) {
  if (v.empty()) return nullptr;
  if (auto* p = boost::any_cast<std::string>(&v)) return *p;
  if (auto* p = boost::any_cast<bool>(&v)) return *p;
  if (auto* p = boost::any_cast<int>(&v)) return *p;
  if (auto* p = boost::any_cast<int64_t>(&v)) return *p;
  if (auto* p = boost::any_cast<uint64_t>(&v)) return *p;
  if (auto* p = boost::any_cast<double>(&v)) return *p;
  if (auto* p = boost::any_cast<std::vector<std::string>>(&v)) return *p;
  if (auto* p = boost::any_cast<std::vector<double>>(&v)) return *p;
  return "<unprintable>";
}

std::string json_to_ini_value(const nlohmann::json& j) {
  if (j.is_string()) return j.get<std::string>();
  if (j.is_boolean()) return j.get<bool>() ? "true" : "false";
  return j.dump();
}
}  // namespace

nlohmann::json Config::to_json() const {
  nlohmann::json out = nlohmann::json::object();
  for (const auto& [name, value] : vm_) {
    if (name == "help" || name == "print-config") continue;
    out[name] = any_to_json(value.value());
  }
  return out;
}

std::string Config::to_ini() const {
  std::ostringstream ss;
  ss << "# effective configuration of " << program_ << "\n";
  const nlohmann::json effective = to_json();
  for (const auto& [name, value] : effective.items()) {
    if (name == "config" || name == positional_name_) continue;
    if (value.is_array()) {  // a multi-token option is repeated, one value per line
      for (const auto& item : value) ss << name << " = " << json_to_ini_value(item) << "\n";
    } else if (!value.is_null()) {
      ss << name << " = " << json_to_ini_value(value) << "\n";
    }
  }
  if (!positional_name_.empty() && vm_.count(positional_name_))
    for (const auto& item : effective[positional_name_]) ss << "# input: " << json_to_ini_value(item) << "\n";
  return ss.str();
}

uint64_t parse_byte_size(const std::string& text, const std::string& what) {
  size_t i = 0;
  while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) ++i;
  std::string unit = text.substr(i);
  for (auto& c : unit) c = char(std::toupper(static_cast<unsigned char>(c)));
  static const std::pair<const char*, uint64_t> kUnits[] = {
      {"", 1}, {"B", 1}, {"KB", 1000}, {"MB", 1000'000}, {"GB", 1000'000'000}, {"TB", 1000'000'000'000ull},
      {"KIB", 1ull << 10}, {"MIB", 1ull << 20}, {"GIB", 1ull << 30}, {"TIB", 1ull << 40}};
  if (i == 0 || i > 15) throw ConfigError(what + ": '" + text + "' is not a byte size (e.g. 5GB, 512MiB, 1000000)");
  const uint64_t number = std::stoull(text.substr(0, i));
  for (const auto& [name, scale] : kUnits)
    if (unit == name) {
      if (number == 0) throw ConfigError(what + ": must be greater than zero");
      if (number > UINT64_MAX / scale) throw ConfigError(what + ": '" + text + "' is too large");
      return number * scale;
    }
  throw ConfigError(what + ": unknown unit in '" + text + "' (use B, KB, MB, GB, TB, KiB, MiB, GiB or TiB)");
}

}  // namespace ovr
