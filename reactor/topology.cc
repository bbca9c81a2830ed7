#include "reactor/topology.h"

#include <hwloc.h>

#include <algorithm>
#include <cerrno>
#include <memory>
#include <stdexcept>
#include <string>
#include <system_error>
#include <utility>

namespace kev {
namespace {

struct BitmapFree {
  void operator()(hwloc_bitmap_s* bitmap) const noexcept { hwloc_bitmap_free(bitmap); }
};
using Bitmap = std::unique_ptr<hwloc_bitmap_s, BitmapFree>;

Bitmap NewBitmap() {
  Bitmap bitmap(hwloc_bitmap_alloc());
  if (bitmap == nullptr) throw std::bad_alloc();
  return bitmap;
}

[[noreturn]] void ThrowBadCpuset(std::string_view text, std::size_t pos, const char* what) {
  throw std::invalid_argument("invalid --cpuset \"" + std::string(text) + "\": " + what +
                              " at position " + std::to_string(pos));
}

// One candidate PU for planning.
struct Pu {
  unsigned os = 0;        // OS index
  unsigned logical = 0;   // hwloc logical index (topology order)
  hwloc_obj_t core_key;   // the core holding it, or the PU itself when there is no core level
  unsigned core = 0;      // logical index of core_key
  int node = -1;          // OS index of the local NUMA node
  unsigned level = 0;     // rank among the candidate PUs of its core: 0 = first sibling
};

// Picks `need` PUs out of `pool` (topology order), spreading them evenly over NUMA nodes:
// round-robin over nodes in order of first appearance.
std::vector<Pu> TakeBalanced(const std::vector<Pu>& pool, std::size_t need) {
  if (pool.size() <= need) return pool;
  std::vector<int> nodes;
  for (const Pu& pu : pool) {
    if (std::find(nodes.begin(), nodes.end(), pu.node) == nodes.end()) nodes.push_back(pu.node);
  }
  std::vector<std::vector<Pu>> by_node(nodes.size());
  for (const Pu& pu : pool) {
    const auto it = std::find(nodes.begin(), nodes.end(), pu.node);
    by_node[it - nodes.begin()].push_back(pu);
  }
  std::vector<Pu> taken;
  for (std::size_t round = 0; taken.size() < need; ++round) {
    for (const std::vector<Pu>& list : by_node) {
      if (round < list.size() && taken.size() < need) taken.push_back(list[round]);
    }
  }
  return taken;
}

}  // namespace

std::vector<unsigned> ParseCpuset(std::string_view text) {
  if (text.empty()) ThrowBadCpuset(text, 0, "empty CPU list");
  std::vector<unsigned> cpus;
  std::size_t pos = 0;
  // Reads a CPU number at `pos`, advancing it.
  auto number = [&]() -> unsigned {
    const std::size_t start = pos;
    unsigned long value = 0;
    while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') {
      value = value * 10 + static_cast<unsigned>(text[pos] - '0');
      if (value > kMaxCpuIndex) {
        ThrowBadCpuset(text, start,
                       ("CPU number above " + std::to_string(kMaxCpuIndex)).c_str());
      }
      ++pos;
    }
    if (pos == start) ThrowBadCpuset(text, pos, "expected a CPU number");
    return static_cast<unsigned>(value);
  };
  while (true) {
    const std::size_t item = pos;
    const unsigned first = number();
    unsigned last = first;
    if (pos < text.size() && text[pos] == '-') {
      ++pos;
      last = number();
      if (last < first) ThrowBadCpuset(text, item, "range ends before it starts");
    }
    for (unsigned cpu = first; cpu <= last; ++cpu) cpus.push_back(cpu);
    if (pos == text.size()) break;
    if (text[pos] != ',') ThrowBadCpuset(text, pos, "expected ',' or '-'");
    ++pos;
  }
  std::sort(cpus.begin(), cpus.end());
  cpus.erase(std::unique(cpus.begin(), cpus.end()), cpus.end());
  return cpus;
}

std::string FormatCpuset(std::span<const unsigned> cpus) {
  std::vector<unsigned> sorted(cpus.begin(), cpus.end());
  std::sort(sorted.begin(), sorted.end());
  sorted.erase(std::unique(sorted.begin(), sorted.end()), sorted.end());
  std::string out;
  for (std::size_t i = 0; i < sorted.size();) {
    std::size_t j = i;
    while (j + 1 < sorted.size() && sorted[j + 1] == sorted[j] + 1) ++j;
    if (!out.empty()) out += ',';
    out += std::to_string(sorted[i]);
    if (j > i) out += '-' + std::to_string(sorted[j]);
    i = j + 1;
  }
  return out;
}

Topology Topology::Detect() {
  hwloc_topology_t topology;
  if (hwloc_topology_init(&topology) != 0) {
    throw std::system_error(errno, std::system_category(), "hwloc_topology_init");
  }
  if (hwloc_topology_load(topology) != 0) {
    const int error = errno;
    hwloc_topology_destroy(topology);
    throw std::system_error(error, std::system_category(), "hwloc_topology_load");
  }
  return Topology(topology);
}

Topology Topology::Synthetic(const std::string& description) {
  hwloc_topology_t topology;
  if (hwloc_topology_init(&topology) != 0) {
    throw std::system_error(errno, std::system_category(), "hwloc_topology_init");
  }
  if (hwloc_topology_set_synthetic(topology, description.c_str()) != 0 ||
      hwloc_topology_load(topology) != 0) {
    hwloc_topology_destroy(topology);
    throw std::invalid_argument("invalid synthetic topology \"" + description + "\"");
  }
  return Topology(topology);
}

const Topology& Topology::System() {
  // Never destroyed: shard threads may still use it while static destructors run at exit.
  static const Topology* const system = new Topology(Detect());
  return *system;
}

Topology::Topology(Topology&& other) noexcept
    : topology_(std::exchange(other.topology_, nullptr)) {}

Topology& Topology::operator=(Topology&& other) noexcept {
  if (this != &other) {
    if (topology_ != nullptr) hwloc_topology_destroy(topology_);
    topology_ = std::exchange(other.topology_, nullptr);
  }
  return *this;
}

Topology::~Topology() {
  if (topology_ != nullptr) hwloc_topology_destroy(topology_);
}

std::vector<unsigned> Topology::AvailableCpus() const {
  Bitmap usable = NewBitmap();
  hwloc_bitmap_copy(usable.get(), hwloc_topology_get_allowed_cpuset(topology_));
  if (hwloc_topology_is_thissystem(topology_)) {
    // Respect taskset/numactl restrictions the process was started with. If the query fails
    // the cgroup's allowed set is still a correct (if wider) answer.
    Bitmap bound = NewBitmap();
    if (hwloc_get_cpubind(topology_, bound.get(), HWLOC_CPUBIND_THREAD) == 0) {
      hwloc_bitmap_and(usable.get(), usable.get(), bound.get());
    }
  }
  std::vector<unsigned> cpus;
  for (hwloc_obj_t pu = hwloc_get_next_obj_by_type(topology_, HWLOC_OBJ_PU, nullptr);
       pu != nullptr; pu = hwloc_get_next_obj_by_type(topology_, HWLOC_OBJ_PU, pu)) {
    if (hwloc_bitmap_isset(usable.get(), pu->os_index)) cpus.push_back(pu->os_index);
  }
  std::sort(cpus.begin(), cpus.end());
  return cpus;
}

std::vector<ShardPlacement> Topology::PlanShards(unsigned smp,
                                                 std::span<const unsigned> cpuset) const {
  if (smp == 0) throw std::invalid_argument("--smp must be at least 1");
  const hwloc_const_bitmap_t allowed = hwloc_topology_get_allowed_cpuset(topology_);
  std::vector<unsigned> wanted;
  if (cpuset.empty()) {
    wanted = AvailableCpus();
  } else {
    wanted.assign(cpuset.begin(), cpuset.end());
    std::sort(wanted.begin(), wanted.end());
    wanted.erase(std::unique(wanted.begin(), wanted.end()), wanted.end());
    for (unsigned cpu : wanted) {
      if (hwloc_get_pu_obj_by_os_index(topology_, cpu) == nullptr ||
          !hwloc_bitmap_isset(allowed, cpu)) {
        throw std::invalid_argument("--cpuset " + FormatCpuset(cpuset) + " lists CPU " +
                                    std::to_string(cpu) +
                                    ", which this machine does not offer (available: " +
                                    FormatCpuset(AvailableCpus()) + ")");
      }
    }
  }
  if (smp > wanted.size()) {
    throw std::invalid_argument(
        "--smp " + std::to_string(smp) + " asks for more CPUs than " +
        (cpuset.empty() ? std::string("the process may use: ") + FormatCpuset(wanted)
                        : "--cpuset " + FormatCpuset(cpuset) + " provides") +
        " (" + std::to_string(wanted.size()) + ")");
  }

  // Candidates in topology order, each with its core, NUMA node and rank within its core.
  std::vector<Pu> candidates;
  unsigned max_level = 0;
  for (hwloc_obj_t obj = hwloc_get_next_obj_by_type(topology_, HWLOC_OBJ_PU, nullptr);
       obj != nullptr; obj = hwloc_get_next_obj_by_type(topology_, HWLOC_OBJ_PU, obj)) {
    if (!std::binary_search(wanted.begin(), wanted.end(), obj->os_index)) continue;
    Pu pu;
    pu.os = obj->os_index;
    pu.logical = obj->logical_index;
    hwloc_obj_t core = hwloc_get_ancestor_obj_by_type(topology_, HWLOC_OBJ_CORE, obj);
    pu.core_key = core != nullptr ? core : obj;
    pu.core = pu.core_key->logical_index;
    pu.node = obj->nodeset != nullptr ? hwloc_bitmap_first(obj->nodeset) : -1;
    for (const Pu& other : candidates) pu.level += other.core_key == pu.core_key ? 1 : 0;
    max_level = std::max(max_level, pu.level);
    candidates.push_back(pu);
  }

  // Level by level: every core's first candidate PU before any core's second (so siblings
  // share a core only when there are more shards than cores), balanced over NUMA nodes when a
  // level is only partly needed.
  std::vector<Pu> chosen;
  for (unsigned level = 0; level <= max_level && chosen.size() < smp; ++level) {
    std::vector<Pu> pool;
    for (const Pu& pu : candidates) {
      if (pu.level == level) pool.push_back(pu);
    }
    for (const Pu& pu : TakeBalanced(pool, smp - chosen.size())) chosen.push_back(pu);
  }
  std::sort(chosen.begin(), chosen.end(),
            [](const Pu& a, const Pu& b) { return a.logical < b.logical; });

  std::vector<ShardPlacement> plan;
  plan.reserve(chosen.size());
  for (const Pu& pu : chosen) {
    plan.push_back(ShardPlacement{static_cast<unsigned>(plan.size()), pu.os, pu.core, pu.node});
  }
  return plan;
}

void Topology::PinCurrentThread(const ShardPlacement& placement) const {
  if (!hwloc_topology_is_thissystem(topology_)) {
    throw std::logic_error("cannot pin a thread using a synthetic topology");
  }
  if (hwloc_get_pu_obj_by_os_index(topology_, placement.cpu) == nullptr) {
    throw std::invalid_argument("cannot pin shard " + std::to_string(placement.shard) +
                                " to CPU " + std::to_string(placement.cpu) +
                                ": no such CPU on this machine");
  }
  Bitmap set = NewBitmap();
  hwloc_bitmap_only(set.get(), placement.cpu);
  if (hwloc_set_cpubind(topology_, set.get(), HWLOC_CPUBIND_THREAD) != 0) {
    throw std::system_error(errno, std::system_category(),
                            "pinning shard " + std::to_string(placement.shard) + " to CPU " +
                                std::to_string(placement.cpu));
  }
}

MemoryBindResult Topology::BindMemoryToLocalNode(const ShardPlacement& placement) const {
  if (!hwloc_topology_is_thissystem(topology_)) {
    throw std::logic_error("cannot bind memory using a synthetic topology");
  }
  const std::string who = "shard " + std::to_string(placement.shard) + " (CPU " +
                          std::to_string(placement.cpu) + ")";
  MemoryBindResult result;
  if (placement.numa_node < 0) {
    result.message = "memory of " + who + " left unbound: the machine reports no NUMA node";
    return result;
  }
  const std::string node = "NUMA node " + std::to_string(placement.numa_node);
  Bitmap nodeset = NewBitmap();
  hwloc_bitmap_only(nodeset.get(), static_cast<unsigned>(placement.numa_node));
  if (hwloc_set_membind(topology_, nodeset.get(), HWLOC_MEMBIND_BIND,
                        HWLOC_MEMBIND_THREAD | HWLOC_MEMBIND_BYNODESET) == 0) {
    result.bound = true;
    result.message = "memory of " + who + " bound to " + node;
    return result;
  }
  const int error = errno;
  if (error == ENOSYS || error == EXDEV || error == EPERM) {
    // ENOSYS: kernel without NUMA; EXDEV: policy not enforceable here; EPERM: container
    // seccomp profiles commonly filter set_mempolicy. Running unbound is slower on multi-node
    // machines but correct.
    result.error = error;
    result.message = "memory of " + who + " not bound to " + node + " (" +
                     std::system_category().message(error) + "); using the default policy";
    return result;
  }
  throw std::system_error(error, std::system_category(),
                          "binding memory of " + who + " to " + node);
}

std::vector<ShardPlacement> PlanShards(unsigned smp, std::span<const unsigned> cpuset) {
  return Topology::System().PlanShards(smp, cpuset);
}

void PinCurrentThread(const ShardPlacement& placement) {
  Topology::System().PinCurrentThread(placement);
}

MemoryBindResult BindMemoryToLocalNode(const ShardPlacement& placement) {
  return Topology::System().BindMemoryToLocalNode(placement);
}

}  // namespace kev
