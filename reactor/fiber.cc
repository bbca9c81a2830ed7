#include "reactor/fiber.h"

#include <unistd.h>

#include <boost/context/fiber.hpp>
#include <boost/context/protected_fixedsize_stack.hpp>
#include <cstddef>
#include <memory>
#include <utility>

#include "reactor/internal/check.h"
#include "reactor/internal/future_state.h"
#include "reactor/task_queue.h"

// Boost.Context 1.74's fcontext fibers do not tell the sanitizers about stack switches, so we
// do: ASan must know which stack is live (for exceptions and no-return calls), and TSan keeps
// per-fiber state that must follow the switches.
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#define KEV_FIBER_ASAN 1
#endif
#if defined(__SANITIZE_THREAD__)
// GCC 12 ships these in libtsan but not in its headers.
extern "C" {
void* __tsan_get_current_fiber(void);
void* __tsan_create_fiber(unsigned flags);
void __tsan_destroy_fiber(void* fiber);
void __tsan_switch_to_fiber(void* fiber, unsigned flags);
}
#define KEV_FIBER_TSAN 1
#endif

namespace kev {
namespace internal {
namespace {

namespace ctx = boost::context;

class FiberImpl;
thread_local FiberImpl* current_fiber = nullptr;

// One fiber: a Task (each run switches into the fiber until it suspends or ends) and the
// FiberSuspender that Future::Get() uses while it runs. Deletes itself when the fiber ends.
//
// The fiber is never destroyed while suspended: a suspended fiber always waits on a future,
// and futures always resolve (a dropped Promise resolves with BrokenPromise). So Boost's
// forced-unwind of a suspended fiber never happens, and FiberBody may catch (...).
class FiberImpl final : public Task, public FiberSuspender {
 public:
  explicit FiberImpl(std::unique_ptr<FiberBody> body) : body_(std::move(body)) {
#if KEV_FIBER_TSAN
    tsan_fiber_ = __tsan_create_fiber(0);
#endif
  }

  void Start(size_t stack_size) {
    context_ = ctx::fiber(std::allocator_arg, GuardedStack(stack_size, this),
                          [this](ctx::fiber&& caller) { return Entry(std::move(caller)); });
    TaskQueue::CurrentOrDie("kev::Async()").Schedule(this);
  }

  // On the scheduler's stack, inside TaskQueue::RunReady().
  void Run() noexcept override {
    FiberImpl* const previous = current_fiber;
    FiberSuspender* const previous_suspender = current_fiber_suspender;
    current_fiber = this;
    current_fiber_suspender = this;
    BeforeSwitchIntoFiber();
    context_ = std::move(context_).resume();
    AfterReturnFromFiber();
    current_fiber = previous;
    current_fiber_suspender = previous_suspender;
    if (!context_) delete this;  // The fiber returned; Boost already freed its stack.
  }

  FiberStack Stack() const noexcept {
    const char* bottom = static_cast<const char*>(stack_bottom_);
    return FiberStack{bottom, bottom + ctx::stack_traits::page_size(), bottom + stack_size_};
  }

  // On the fiber's stack, from Future::Get().
  void SuspendUntilResolved(FutureStateBase& state) noexcept override {
    state.SetWaiter(this, TaskQueue::CurrentOrDie("Future::Get() in a fiber"));
    SwitchToScheduler(/*exiting=*/false);
  }

  ~FiberImpl() {
#if KEV_FIBER_TSAN
    __tsan_destroy_fiber(tsan_fiber_);
#endif
  }

 private:
  // protected_fixedsize_stack (mmap + a PROT_NONE guard page at the low end) that also records
  // the stack's bounds for the ASan annotations. Boost copies it into the fiber's record.
  class GuardedStack {
   public:
    GuardedStack(size_t size, FiberImpl* owner) : stack_(size), owner_(owner) {}
    ctx::stack_context allocate() {
      ctx::stack_context sctx = stack_.allocate();
      owner_->stack_bottom_ = static_cast<char*>(sctx.sp) - sctx.size;
      owner_->stack_size_ = sctx.size;
#if KEV_FIBER_ASAN
      // A dead fiber's frames never return, so their redzones stay poisoned in ASan's shadow;
      // a new stack mapped at the same address must start clean.
      __asan_unpoison_memory_region(owner_->stack_bottom_, sctx.size);
#endif
      return sctx;
    }
    void deallocate(ctx::stack_context& sctx) noexcept { stack_.deallocate(sctx); }

   private:
    ctx::protected_fixedsize_stack stack_;
    FiberImpl* owner_;
  };

  // First and only frame of the fiber's stack.
  ctx::fiber Entry(ctx::fiber&& caller) {
    caller_ = std::move(caller);
    AfterSwitchIntoFiber();
    body_->Run();
    body_.reset();  // The user's function and its captures die on the fiber, like locals.
    SwitchToScheduler(/*exiting=*/true);
    return std::move(caller_);  // Boost frees the stack and switches to the scheduler.
  }

  void SwitchToScheduler(bool exiting) noexcept {
#if KEV_FIBER_ASAN
    // Null save slot when exiting: this stack is about to go away.
    __sanitizer_start_switch_fiber(exiting ? nullptr : &asan_fake_stack_, caller_stack_bottom_,
                                   caller_stack_size_);
#endif
#if KEV_FIBER_TSAN
    __tsan_switch_to_fiber(tsan_caller_, 0);
#endif
    if (exiting) return;  // The actual switch happens when Entry() returns.
    caller_ = std::move(caller_).resume();
    AfterSwitchIntoFiber();
  }

  void BeforeSwitchIntoFiber() noexcept {
#if KEV_FIBER_ASAN
    __sanitizer_start_switch_fiber(&asan_caller_fake_stack_, stack_bottom_, stack_size_);
#endif
#if KEV_FIBER_TSAN
    tsan_caller_ = __tsan_get_current_fiber();
    __tsan_switch_to_fiber(tsan_fiber_, 0);
#endif
  }

  void AfterSwitchIntoFiber() noexcept {
#if KEV_FIBER_ASAN
    __sanitizer_finish_switch_fiber(asan_fake_stack_, &caller_stack_bottom_, &caller_stack_size_);
#endif
  }

  void AfterReturnFromFiber() noexcept {
#if KEV_FIBER_ASAN
    __sanitizer_finish_switch_fiber(asan_caller_fake_stack_, nullptr, nullptr);
#endif
  }

  std::unique_ptr<FiberBody> body_;
  ctx::fiber context_;  // The fiber while it is suspended (held by the scheduler side).
  ctx::fiber caller_;   // The scheduler while the fiber runs (held by the fiber side).
  void* stack_bottom_ = nullptr;
  size_t stack_size_ = 0;
  [[maybe_unused]] const void* caller_stack_bottom_ = nullptr;
  [[maybe_unused]] size_t caller_stack_size_ = 0;
  [[maybe_unused]] void* asan_fake_stack_ = nullptr;
  [[maybe_unused]] void* asan_caller_fake_stack_ = nullptr;
#if KEV_FIBER_TSAN
  void* tsan_fiber_ = nullptr;
  void* tsan_caller_ = nullptr;
#endif
};

size_t RoundUpToPages(size_t bytes) {
  static const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  if (bytes < ctx::stack_traits::minimum_size()) bytes = ctx::stack_traits::minimum_size();
  return (bytes + page - 1) / page * page;
}

}  // namespace

void StartFiber(const FiberOptions& options, std::unique_ptr<FiberBody> body) {
  // Checked before anything is allocated, so a misuse leaks nothing on its way to abort().
  TaskQueue::CurrentOrDie("kev::Async()");
  auto fiber = std::make_unique<FiberImpl>(std::move(body));
  fiber->Start(RoundUpToPages(options.stack_size));
  fiber.release();  // Owned by the fiber itself from now on: it deletes itself when it ends.
}

FiberStack CurrentFiberStack() noexcept {
  return current_fiber == nullptr ? FiberStack{} : current_fiber->Stack();
}

}  // namespace internal

bool InFiber() noexcept { return internal::current_fiber != nullptr; }

}  // namespace kev
