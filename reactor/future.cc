#include "reactor/future.h"

#include "reactor/internal/check.h"
#include "reactor/internal/future_state.h"

namespace kev::internal {

void WaitOnFiber(FutureStateBase& state) noexcept {
  FiberSuspender* fiber = current_fiber_suspender;
  KEV_CHECK_MSG(fiber != nullptr,
            "Future::Get() on a pending future outside a fiber: blocking the shard's thread "
            "would deadlock it; use co_await or .Then(), or run the code in kev::Async()");
  fiber->SuspendUntilResolved(state);
}

}  // namespace kev::internal
