// The parameters of Qwen2.5-VL (Qwen2_5_VLForConditionalGeneration) as Hugging Face names and
// shapes them, computed from a config.json: what a checkpoint must hold, and what ovr_init
// creates. The model code checks loaded weights against this list.
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "io/dtype.h"

namespace ovr::model {

// How a parameter is initialised by Hugging Face's _init_weights: normal(0, initializer_range)
// for weight matrices and embeddings, ones for norm weights, zeros for biases.
enum class Init { Normal, Ones, Zeros };

struct ParamSpec {
  io::TensorInfo info;
  Init init;
};

// Reads the text fields from the flat layout or from the nested "text_config" of newer
// transformers; vision fields from "vision_config" with the reference defaults for any field the
// file omits (as the official 7B config does). Throws ovr::Error naming a missing or bad field.
std::vector<ParamSpec> qwen2_5_vl_parameters(const nlohmann::json& config, io::DType dtype,
                                              const std::string& origin = "config.json");

}  // namespace ovr::model
