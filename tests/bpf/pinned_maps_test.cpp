// Pinned maps that another batond left behind (a restart keeping flows, a crash) are reused only when
// their shape fits this batond's; one that does not (another max_flows, an older map type) is replaced
// when empty and reported, never silently dropped, when it holds flows.
#include <bpf/bpf.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "baton_abi.h"
#include "core/packet.hpp"
#include "daemon/bpf_abi_convert.hpp"
#include "daemon/bpf_programs.hpp"
#include "tests/unit/packet_builder.hpp"

namespace baton {
namespace {

class PinnedMapsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root";
    dir_ = "/sys/fs/bpf/baton-pintest-" + std::to_string(getpid());
  }
  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  Result<std::unique_ptr<BpfPrograms>> load(uint32_t max_flows) {
    BpfLoadOptions o;
    o.pin_dir = dir_;
    o.service_addr = test::kNode1;
    o.max_flows = max_flows;
    o.node_id = 1;
    return BpfPrograms::load(o);
  }
  static uint32_t max_entries(int fd) {
    bpf_map_info info{};
    uint32_t len = sizeof(info);
    EXPECT_EQ(bpf_obj_get_info_by_fd(fd, &info, &len), 0);
    return info.max_entries;
  }
  std::string dir_;
};

TEST_F(PinnedMapsTest, EmptyMapsOfAnotherSizeAreReplaced) {
  {
    auto first = load(16);
    ASSERT_TRUE(first) << first.error();
  }  // gone without unpinning, as after a crash
  auto second = load(32);
  ASSERT_TRUE(second) << second.error();
  EXPECT_EQ(max_entries((*second)->fe_flows_fd()), flow_map_capacity(32));
  (*second)->unpin();
}

TEST_F(PinnedMapsTest, MapsThatHoldFlowsButDoNotFitAreReportedAndKept) {
  baton_flow_key key = to_abi(FlowKey{test::kClient, test::kNode1, 40000, 80});
  {
    auto first = load(16);
    ASSERT_TRUE(first) << first.error();
    baton_be_flow v{};
    ASSERT_EQ(bpf_map_update_elem((*first)->be_flows_fd(), &key, &v, BPF_ANY), 0);
  }
  auto second = load(32);
  ASSERT_FALSE(second);
  EXPECT_NE(second.error().find("holds flows"), std::string::npos) << second.error();
  EXPECT_NE(second.error().find("max_flows"), std::string::npos) << second.error();
  // The flow is still there for the batond whose size fits.
  auto same = load(16);
  ASSERT_TRUE(same) << same.error();
  baton_be_flow v{};
  EXPECT_EQ(bpf_map_lookup_elem((*same)->be_flows_fd(), &key, &v), 0);
  (*same)->unpin();
}

}  // namespace
}  // namespace baton
