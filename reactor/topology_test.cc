#include "reactor/topology.h"

#include <sched.h>

#include <cerrno>
#include <set>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace kev {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::vector<unsigned> Cpus(const std::vector<ShardPlacement>& plan) {
  std::vector<unsigned> cpus;
  for (const ShardPlacement& p : plan) cpus.push_back(p.cpu);
  return cpus;
}

std::vector<int> Nodes(const std::vector<ShardPlacement>& plan) {
  std::vector<int> nodes;
  for (const ShardPlacement& p : plan) nodes.push_back(p.numa_node);
  return nodes;
}

// Returns the message of the std::invalid_argument `fn` throws, or "" if it throws nothing.
template <typename Fn>
std::string InvalidArgumentMessage(Fn fn) {
  try {
    fn();
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "";
}

TEST(ParseCpusetTest, AcceptsNumbersRangesAndMixes) {
  EXPECT_THAT(ParseCpuset("0"), ElementsAre(0));
  EXPECT_THAT(ParseCpuset("0-3,6"), ElementsAre(0, 1, 2, 3, 6));
  EXPECT_THAT(ParseCpuset("6,0-3"), ElementsAre(0, 1, 2, 3, 6));
  EXPECT_THAT(ParseCpuset("1,1,0-1"), ElementsAre(0, 1));
  EXPECT_THAT(ParseCpuset("5-5"), ElementsAre(5));
  EXPECT_THAT(ParseCpuset("007"), ElementsAre(7));
  EXPECT_EQ(ParseCpuset("0-8191").size(), 8192u);
}

TEST(ParseCpusetTest, RejectsMalformedInputWithAClearMessage) {
  for (const char* bad : {"", ",", "0,", ",0", "a", "-1", "0-", "1-2-3", " 1", "1 ", "0--1",
                          "1,,2", "0x3", "3-1", "8192", "99999999999999999999999"}) {
    const std::string message = InvalidArgumentMessage([&] { ParseCpuset(bad); });
    EXPECT_THAT(message, HasSubstr("invalid --cpuset \"" + std::string(bad) + "\"")) << bad;
  }
  EXPECT_THAT(InvalidArgumentMessage([] { ParseCpuset("3-1"); }),
              HasSubstr("range ends before it starts at position 0"));
  EXPECT_THAT(InvalidArgumentMessage([] { ParseCpuset("0,x"); }),
              HasSubstr("expected a CPU number at position 2"));
  EXPECT_THAT(InvalidArgumentMessage([] { ParseCpuset("8192"); }), HasSubstr("above 8191"));
}

TEST(FormatCpusetTest, CompressesRanges) {
  EXPECT_EQ(FormatCpuset(std::vector<unsigned>{}), "");
  EXPECT_EQ(FormatCpuset(std::vector<unsigned>{6, 0, 1, 2, 3, 3}), "0-3,6");
  EXPECT_EQ(FormatCpuset(std::vector<unsigned>{1, 3, 5}), "1,3,5");
  EXPECT_EQ(FormatCpuset(ParseCpuset("0-2,4-5,9")), "0-2,4-5,9");
}

// Two NUMA nodes x two cores x two hyperthreads, siblings numbered next to each other:
// core 0 = PUs 0,1 and core 1 = PUs 2,3 on node 0; cores 2,3 = PUs 4..7 on node 1.
constexpr char kTwoNodes[] = "pack:1 numa:2 core:2 pu:2";
// Four cores x two hyperthreads, Linux-style numbering: core c holds PUs c and c+4.
constexpr char kLinuxSiblings[] = "core:4 pu:2(indexes=0,4,1,5,2,6,3,7)";

TEST(PlanShardsTest, OneShardPerCoreBeforeAnySibling) {
  const Topology topo = Topology::Synthetic(kTwoNodes);
  const std::vector<ShardPlacement> plan = topo.PlanShards(4, {});
  EXPECT_THAT(Cpus(plan), ElementsAre(0, 2, 4, 6));
  EXPECT_THAT(Nodes(plan), ElementsAre(0, 0, 1, 1));
  std::set<unsigned> cores;
  for (std::size_t i = 0; i < plan.size(); ++i) {
    EXPECT_EQ(plan[i].shard, i);
    cores.insert(plan[i].core);
  }
  EXPECT_EQ(cores.size(), 4u);
}

TEST(PlanShardsTest, FewerShardsThanCoresSpreadOverNumaNodes) {
  const Topology topo = Topology::Synthetic(kTwoNodes);
  EXPECT_THAT(Cpus(topo.PlanShards(2, {})), ElementsAre(0, 4));
  EXPECT_THAT(Nodes(topo.PlanShards(2, {})), ElementsAre(0, 1));
  EXPECT_THAT(Cpus(topo.PlanShards(3, {})), ElementsAre(0, 2, 4));
  EXPECT_THAT(Cpus(topo.PlanShards(1, {})), ElementsAre(0));
}

TEST(PlanShardsTest, SiblingsOnlyWhenShardsOutnumberCores) {
  const Topology topo = Topology::Synthetic(kTwoNodes);
  // 6 shards on 4 cores: all four first siblings, then one second sibling per node.
  EXPECT_THAT(Cpus(topo.PlanShards(6, {})), ElementsAre(0, 1, 2, 4, 5, 6));
  EXPECT_THAT(Cpus(topo.PlanShards(8, {})), ElementsAre(0, 1, 2, 3, 4, 5, 6, 7));
}

TEST(PlanShardsTest, LinuxSiblingNumberingStillGetsDistinctCores) {
  const Topology topo = Topology::Synthetic(kLinuxSiblings);
  EXPECT_THAT(Cpus(topo.PlanShards(4, {})), ElementsAre(0, 1, 2, 3));
  // A cpuset of two sibling pairs: the plan takes one PU of each core, not a pair.
  EXPECT_THAT(Cpus(topo.PlanShards(2, ParseCpuset("0-1,4-5"))), ElementsAre(0, 1));
  // Core 0 offers PUs 0 and 4, core 1 only PU 5: shards go to cores 0 and 1.
  const std::vector<ShardPlacement> plan = topo.PlanShards(2, ParseCpuset("0,4,5"));
  EXPECT_THAT(Cpus(plan), ElementsAre(0, 5));
  EXPECT_NE(plan[0].core, plan[1].core);
}

TEST(PlanShardsTest, RejectsImpossibleRequests) {
  const Topology topo = Topology::Synthetic(kTwoNodes);
  EXPECT_EQ(InvalidArgumentMessage([&] { topo.PlanShards(4, ParseCpuset("0-1")); }),
            "--smp 4 asks for more CPUs than --cpuset 0-1 provides (2)");
  EXPECT_THAT(InvalidArgumentMessage([&] { topo.PlanShards(9, {}); }),
              HasSubstr("--smp 9 asks for more CPUs than the process may use: 0-7 (8)"));
  EXPECT_THAT(InvalidArgumentMessage([&] { topo.PlanShards(1, ParseCpuset("3,8")); }),
              HasSubstr("--cpuset 3,8 lists CPU 8, which this machine does not offer"));
  EXPECT_THAT(InvalidArgumentMessage([&] { topo.PlanShards(0, {}); }),
              HasSubstr("--smp must be at least 1"));
}

TEST(TopologyTest, SyntheticTopologiesRefuseToBind) {
  const Topology topo = Topology::Synthetic(kTwoNodes);
  const ShardPlacement p = topo.PlanShards(1, {})[0];
  EXPECT_THROW(topo.PinCurrentThread(p), std::logic_error);
  EXPECT_THROW(topo.BindMemoryToLocalNode(p), std::logic_error);
  EXPECT_THROW(Topology::Synthetic("no such level:3"), std::invalid_argument);
}

TEST(TopologyTest, MovedFromTopologyIsDestroyedOnce) {
  Topology a = Topology::Synthetic(kTwoNodes);
  Topology b = std::move(a);
  a = Topology::Synthetic(kLinuxSiblings);
  EXPECT_EQ(b.AvailableCpus().size(), 8u);
  EXPECT_EQ(a.AvailableCpus().size(), 8u);
}

// --- This machine (2 cores, 1 NUMA node, no hyperthreads at the time of writing). ---

std::vector<unsigned> AffinityOfThisThread() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) != 0) {
    throw std::system_error(errno, std::system_category(), "sched_getaffinity");
  }
  std::vector<unsigned> cpus;
  for (unsigned cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
    if (CPU_ISSET(cpu, &set)) cpus.push_back(cpu);
  }
  return cpus;
}

TEST(SystemTopologyTest, PlansEveryAvailableCpuOnceOnDistinctCores) {
  const std::vector<unsigned> available = Topology::System().AvailableCpus();
  ASSERT_FALSE(available.empty());
  EXPECT_EQ(available, AffinityOfThisThread());  // hwloc and the kernel agree
  const std::vector<ShardPlacement> plan = PlanShards(available.size(), {});
  EXPECT_EQ(Cpus(plan), available);
  for (const ShardPlacement& p : plan) EXPECT_GE(p.numa_node, 0) << "cpu " << p.cpu;
  const std::string message = InvalidArgumentMessage(
      [&] { PlanShards(static_cast<unsigned>(available.size()) + 1, {}); });
  EXPECT_THAT(message, HasSubstr("asks for more CPUs than the process may use: " +
                                 FormatCpuset(available)));
}

TEST(SystemTopologyTest, PinningSetsTheKernelAffinity) {
  const std::vector<ShardPlacement> plan =
      PlanShards(Topology::System().AvailableCpus().size(), {});
  for (const ShardPlacement& p : plan) {
    // A fresh thread per placement: pinning must not leak into the test runner's thread.
    std::vector<unsigned> affinity;
    int running_on = -1;
    std::thread([&] {
      PinCurrentThread(p);
      affinity = AffinityOfThisThread();
      running_on = sched_getcpu();  // setaffinity migrates the caller before returning
    }).join();
    EXPECT_THAT(affinity, ElementsAre(p.cpu));
    EXPECT_EQ(running_on, static_cast<int>(p.cpu));
  }
}

TEST(SystemTopologyTest, PinningToAMissingCpuFails) {
  ShardPlacement p;
  p.cpu = kMaxCpuIndex;
  EXPECT_THROW(PinCurrentThread(p), std::invalid_argument);
}

TEST(SystemTopologyTest, MemoryBindingBindsOrDegradesWithAReason) {
  const ShardPlacement p = PlanShards(1, {})[0];
  MemoryBindResult result;
  std::thread([&] { result = BindMemoryToLocalNode(p); }).join();
  EXPECT_FALSE(result.message.empty());
  if (result.bound) {
    EXPECT_EQ(result.error, 0);
    EXPECT_THAT(result.message, HasSubstr("bound to NUMA node"));
  } else {
    EXPECT_THAT(result.error, ::testing::AnyOf(ENOSYS, EXDEV, EPERM)) << result.message;
  }
  std::printf("%s\n", result.message.c_str());

  ShardPlacement unknown = p;
  unknown.numa_node = -1;
  const MemoryBindResult none = BindMemoryToLocalNode(unknown);
  EXPECT_FALSE(none.bound);
  EXPECT_EQ(none.error, 0);
  EXPECT_THAT(none.message, HasSubstr("no NUMA node"));
}

}  // namespace
}  // namespace kev
