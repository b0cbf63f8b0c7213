// Test helper: for each FILE, reads every tensor through the library (as ovr_convert does) and
// prints one line: "same" when every tensor equals the reference's bytes, "DIFFERENT <name>"
// when a tensor was read without error but holds other bytes, or "error <message>". A damaged
// file must give "same" or "error", and never a crash (the test checks how the process ended).
//
//   read_all_tensors REFERENCE.safetensors FILE...
#include <cstdio>
#include <cstring>
#include <vector>

#include "common/error.h"
#include "common/mpi_runtime.h"
#include "io/hdf5_checkpoint.h"
#include "io/tensor_store.h"

using namespace ovr;

int main(int argc, char** argv) {
  return run_main("read_all_tensors", argc, argv, [](int argc, char** argv) {
    if (argc < 3) throw Error("usage: read_all_tensors REFERENCE FILE...");
    auto ref = io::open_model_source(argv[1]);
    for (int a = 2; a < argc; ++a) {
      try {
        auto src = io::open_model_source(argv[a]);
        std::string verdict = "same";
        if (src->tensors().size() != ref->tensors().size()) verdict = "DIFFERENT tensor count";
        for (const auto& t : src->tensors()) {
          std::vector<char> got(t.nbytes() + 1), want(t.nbytes() + 1);
          src->read_rows(t.name, 0, io::dataset_rows(t), got.data());
          ref->read_rows(t.name, 0, io::dataset_rows(t), want.data());
          if (std::memcmp(got.data(), want.data(), t.nbytes()) != 0) verdict = "DIFFERENT " + t.name;
        }
        std::printf("%s\n", verdict.c_str());
      } catch (const std::exception& e) {
        std::printf("error %s\n", e.what());
      }
    }
    return 0;
  });
}
