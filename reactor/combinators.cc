#include "reactor/combinators.h"

#include <exception>
#include <utility>
#include <vector>

namespace kev::internal {

Future<void> ForEachPending(std::vector<std::pair<size_t, Future<void>>> pending,
                            size_t first_failed_index, std::exception_ptr first_failure) {
  for (auto& [index, future] : pending) {
    co_await StateAwaiter(FutureAccess::PendingState(future));
    if (!future.Failed()) {
      future.Get();
      continue;
    }
    std::exception_ptr ex = future.GetException();
    if (first_failure == nullptr || index < first_failed_index) {
      first_failure = std::move(ex);
      first_failed_index = index;
    }
  }
  if (first_failure != nullptr) std::rethrow_exception(std::move(first_failure));
}

}  // namespace kev::internal
