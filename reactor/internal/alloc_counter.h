// Test helper: counts calls to the global operator new in this binary (which the .cc replaces),
// so tests can prove that a code path allocates nothing. testonly.
//
//   kev::internal::AllocCounter counter;
//   auto f = kev::MakeReadyFuture(1).Then([](int v) { return v + 1; });
//   EXPECT_EQ(counter.Count(), 0);
#ifndef KEV_REACTOR_INTERNAL_ALLOC_COUNTER_H_
#define KEV_REACTOR_INTERNAL_ALLOC_COUNTER_H_

#include <cstdint>

namespace kev::internal {

// Allocations made by the current thread since the process started.
int64_t ThreadAllocations() noexcept;

// Allocations made by the current thread since construction. Per thread, so that gtest or
// sanitizer threads cannot disturb a count.
class AllocCounter {
 public:
  AllocCounter() noexcept : start_(ThreadAllocations()) {}
  int64_t Count() const noexcept { return ThreadAllocations() - start_; }

 private:
  int64_t start_;
};

}  // namespace kev::internal

#endif  // KEV_REACTOR_INTERNAL_ALLOC_COUNTER_H_
