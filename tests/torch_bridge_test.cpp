#include <gtest/gtest.h>
#include <torch/torch.h>

#include "common/error.h"
#include "io/torch_bridge.h"
#include "test_util.h"

using namespace ovr;
using namespace ovr::io;

TEST(TorchBridge, DtypesMapBothWays) {
  for (DType d : {DType::F64, DType::F32, DType::F16, DType::BF16, DType::I64, DType::I32, DType::I16, DType::I8,
                  DType::U8, DType::BOOL})
    EXPECT_EQ(from_scalar_type(to_scalar_type(d)), d);
  EXPECT_THROW(from_scalar_type(at::kComplexFloat), ovr::Error);
}

TEST(TorchBridge, TensorsRoundTripThroughACheckpointBitForBit) {
  const std::string dir = test::temp_dir("torch_bridge");
  torch::manual_seed(0);
  const at::Tensor w = torch::randn({7, 5}).to(at::kBFloat16);
  const at::Tensor h = torch::randn({3}).to(at::kHalf);
  const at::Tensor ids = torch::arange(10, at::kLong).view({2, 5});
  const at::Tensor strided = torch::randn({4, 6}).t();  // not contiguous
  {
    CheckpointWriter writer(dir + "/t.h5", MPI_COMM_SELF, CheckpointAttrs{});
    for (auto [name, t] : {std::pair{"/model/w", w}, {"/model/h", h}, {"/model/ids", ids}, {"/model/s", strided}})
      writer.define(name, tensor_info(name, t).dtype, t.sizes().vec());
    write_tensor(writer, "/model/w", w);
    write_tensor(writer, "/model/h", h);
    write_tensor(writer, "/model/ids", ids);
    write_tensor(writer, "/model/s", strided);
    writer.commit(false);
  }
  CheckpointReader reader(dir + "/t.h5");
  EXPECT_TRUE(torch::equal(read_tensor(reader, "/model/w"), w));
  EXPECT_EQ(read_tensor(reader, "/model/w").scalar_type(), at::kBFloat16);
  EXPECT_TRUE(torch::equal(read_tensor(reader, "/model/h"), h));
  EXPECT_TRUE(torch::equal(read_tensor(reader, "/model/ids"), ids));
  EXPECT_TRUE(torch::equal(read_tensor(reader, "/model/s"), strided));
  auto src = open_model_source(dir + "/t.h5");
  EXPECT_TRUE(torch::equal(read_tensor(*src, "w"), w));
}
