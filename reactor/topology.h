// CPU topology for shard placement: which CPU each shard runs on, and its NUMA node.
//
// kev runs one shard per CPU, each on a thread pinned with hwloc. This header turns the
// user's --smp / --cpuset into a placement plan and applies it:
//   * ParseCpuset("0-3,6") reads a Linux CPU list.
//   * PlanShards(smp, cpuset) picks one processing unit (PU, a hardware thread) per shard.
//     Policy (docs/smp.md): distinct cores first -- two shards share a core (hyperthread
//     siblings) only when there are more shards than cores in the cpuset; when only some cores
//     are needed, they are taken evenly from the NUMA nodes; the plan is listed in topology
//     order so neighbouring shards are neighbours on the machine.
//   * PinCurrentThread(placement) binds the calling thread to its PU.
//   * BindMemoryToLocalNode(placement) asks the kernel to allocate the thread's memory on the
//     PU's NUMA node; machines or containers without NUMA support degrade to "not bound", with
//     the reason reported, instead of failing.
//
// Example (what Smp::Configure does, one thread per entry):
//   std::vector<unsigned> cpus = kev::ParseCpuset(flag_cpuset);       // may throw
//   std::vector<kev::ShardPlacement> plan = kev::PlanShards(smp, cpus);  // may throw
//   // on shard i's thread:
//   kev::PinCurrentThread(plan[i]);
//   kev::MemoryBindResult mem = kev::BindMemoryToLocalNode(plan[i]);
//   if (!mem.bound) LOG(WARNING) << mem.message;
//
// Errors: bad user input throws std::invalid_argument with a message naming the flag; OS
// failures throw std::system_error(errno, std::system_category()).
// Thread-safety: every function and const method may be called from any thread concurrently
// (hwloc topologies are safe for concurrent read-only use).
#ifndef KEV_REACTOR_TOPOLOGY_H_
#define KEV_REACTOR_TOPOLOGY_H_

#include <span>
#include <string>
#include <string_view>
#include <vector>

struct hwloc_topology;  // <hwloc.h> stays out of kev's headers.

namespace kev {

// Parses a Linux CPU list: comma-separated CPU numbers and inclusive ranges, e.g. "0-3,6".
// Returns the CPU OS indices sorted and without duplicates. Throws std::invalid_argument naming
// the offending position for empty input, empty items, non-digits, reversed ranges, or CPU
// numbers above kMaxCpuIndex.
std::vector<unsigned> ParseCpuset(std::string_view text);

// The inverse of ParseCpuset for messages and logs: {0,1,2,3,6} -> "0-3,6"; "" when empty.
// Accepts CPUs in any order and with duplicates.
std::string FormatCpuset(std::span<const unsigned> cpus);

// Largest CPU number ParseCpuset accepts. Linux supports at most 8192 CPUs (NR_CPUS); the
// bound stops "0-4000000000" from building a four-billion-entry list.
inline constexpr unsigned kMaxCpuIndex = 8191;

// Where one shard runs.
struct ShardPlacement {
  unsigned shard = 0;  // 0 .. smp-1
  unsigned cpu = 0;    // OS index of the PU, as in sched_setaffinity(2) and /proc/cpuinfo.
  unsigned core = 0;   // hwloc logical index of the core holding the PU (for logs and tests).
  int numa_node = -1;  // OS index of the PU's local NUMA node; -1 if the machine reports none.
};

// Outcome of BindMemoryToLocalNode. Not an error type: not being bound is a degraded but valid
// way to run (a machine with one node loses nothing).
struct MemoryBindResult {
  bool bound = false;   // The kernel accepted the policy for this thread.
  int error = 0;        // errno behind !bound (ENOSYS, EXDEV, EPERM), 0 if none.
  std::string message;  // One line for the log, says what happened and why.
};

// A loaded hwloc topology: the real machine or a synthetic one. Movable, not copyable.
class Topology {
 public:
  // Discovers the machine this process runs on (reads sysfs; a few milliseconds). Throws
  // std::system_error if hwloc cannot load it.
  static Topology Detect();

  // A made-up machine in hwloc's synthetic syntax, e.g. "pack:1 numa:2 core:4 pu:2" or
  // "core:4 pu:2(indexes=0,4,1,5,2,6,3,7)" (Linux-style sibling numbering). For tests and
  // what-if planning; it cannot pin. Throws std::invalid_argument on a bad description.
  static Topology Synthetic(const std::string& description);

  // The process-wide topology of this machine, detected on first use (thread-safe); used by
  // the free functions below. Throws like Detect() on the first call.
  static const Topology& System();

  Topology(Topology&& other) noexcept;
  Topology& operator=(Topology&& other) noexcept;
  Topology(const Topology&) = delete;
  Topology& operator=(const Topology&) = delete;
  ~Topology();

  // PUs the process may use, sorted by OS index: for the real machine, those allowed by its
  // cgroup and in the calling thread's current affinity mask; for a synthetic one, all.
  std::vector<unsigned> AvailableCpus() const;

  // Plans `smp` shards on the PUs of `cpuset` (OS indices; empty means AvailableCpus()), with
  // the policy in the file comment. Returns exactly `smp` entries, shard i at index i, on
  // distinct PUs. Throws std::invalid_argument if smp is 0, if `cpuset` names a CPU the
  // machine does not offer, or if smp exceeds the PUs available ("--smp 4 asks for more CPUs
  // than --cpuset 0-1 provides (2)").
  std::vector<ShardPlacement> PlanShards(unsigned smp, std::span<const unsigned> cpuset) const;

  // Binds the calling thread to `placement.cpu` (hwloc_set_cpubind, HWLOC_CPUBIND_THREAD).
  // Throws std::system_error with the errno (e.g. EINVAL when the CPU is outside the cgroup),
  // std::logic_error on a synthetic topology.
  void PinCurrentThread(const ShardPlacement& placement) const;

  // Sets the calling thread's memory policy to bind allocations to `placement.numa_node`
  // (hwloc_set_membind, HWLOC_MEMBIND_BIND | HWLOC_MEMBIND_THREAD). Tolerates ENOSYS (kernel
  // without NUMA), EXDEV (policy not enforceable) and EPERM (containers filter the syscall):
  // returns bound = false with the reason. Throws std::system_error on other failures,
  // std::logic_error on a synthetic topology.
  MemoryBindResult BindMemoryToLocalNode(const ShardPlacement& placement) const;

 private:
  explicit Topology(hwloc_topology* topology) noexcept : topology_(topology) {}
  hwloc_topology* topology_;  // Owned; nullptr only when moved from.
};

// The same operations on Topology::System().
std::vector<ShardPlacement> PlanShards(unsigned smp, std::span<const unsigned> cpuset);
void PinCurrentThread(const ShardPlacement& placement);
MemoryBindResult BindMemoryToLocalNode(const ShardPlacement& placement);

}  // namespace kev

#endif  // KEV_REACTOR_TOPOLOGY_H_
