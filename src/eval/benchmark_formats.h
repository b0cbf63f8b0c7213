// Benchmark rows in their published forms, read into one shape (eval/benchmark.cpp builds the
// prompt from it). One reader per format:
//   math500     {"problem", "answer", "unique_id", "subject", "level"}             openai/prm800k
//   mathvision  {"id", "question" with <image1>.., "options", "answer", "image", "subject", "level"}
//   aime, amc   {"problem", "answer": "025" or 27.0, "id"}                         Qwen2.5-Math's data
//   mmmu_pro    {"id", "question" with <image N>, "options": Python list literal, "answer": letter,
//                "topic_difficulty", "subject"}                                   MMMU-Benchmark/MMMU
//   mathvista   {"pid", "question", "image", "choices" (the answer is a choice's text) or null,
//                "precision" (decimal places the answer is given to) or null, "answer", "unit",
//                "metadata": {"task", "grade", ...}}                              lupantech/MathVista
//   mathverse   testmini {"sample_index", "question" with "Choices:\nA:..." inside, "image" ("" in
//                Text Only), "answer", "problem_version", "metadata": {"subject"}}, or the
//                visualizer's rows (MathVista's schema, "metadata": {"problem_version", "subjects"},
//                images beside the file or in images/)                           ZrrSkywalker/MathVerse
//   dynamath    {"id", "question" with "Choices: (A) .. (B) ..", "answer", "image", "answer_type",
//                "subject", "level"}                                              DynaMath/DynaMath
//   generic     any JSONL through a field map (benchmark.h)
#pragma once
#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <vector>

#include "eval/benchmark.h"

namespace ovr::eval {

struct SourceRow {
  std::string id, answer;
  std::optional<std::string> question;       // text, <imageN> placeholders where the file has them
  std::optional<nlohmann::json> messages;    // ovr's chat form (generic)
  std::vector<std::string> options;          // multiple choice: option texts, labelled A, B, ...
  bool options_in_question = false;          // the question already lists them (MathVerse, DynaMath)
  std::vector<std::string> images;           // as the file names them
  std::vector<std::string> image_dirs;       // where a relative image may be, besides the file's folder
  std::optional<std::string> subject, level;
  std::optional<int> decimal_places;         // the row's stated precision
};

// Every format's name, for messages: "math500, mathvision, ...".
const char* format_names();
bool is_format(const std::string& format);

// One parsed JSON row of `format` (generic: through `fields`). Throws ovr::Error naming what the
// row lacks.
SourceRow read_row(const std::string& format, const nlohmann::json& j, const FieldMap& fields);

// The options a multiple-choice question lists in its own text — after its last "Choices:" or
// "Choice:" (any case) where it has one — as "(A) yes (B) no" (DynaMath) or one "A:40°" / "A. 40°"
// line each (MathVerse); empty when it lists fewer than two in order from A.
std::vector<std::string> options_in_text(const std::string& question);

}  // namespace ovr::eval
