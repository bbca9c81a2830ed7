// Gate: tracks in-flight work so that a service can shut down gracefully. Work enters the gate
// (Enter/Hold) while it runs; Close() stops new entries and returns a future that resolves
// when everything already inside has left.
//
//   class Server {
//     kev::Gate gate_;
//    public:
//     kev::Future<void> Handle(Request r) {
//       return kev::WithGate(gate_, [this, r = std::move(r)]() mutable {
//         return Process(std::move(r));  // gate held until this future resolves
//       });                              // fails with kev::GateClosed once stopping
//     }
//     kev::Future<void> Stop() { return gate_.Close(); }  // waits for in-flight requests
//   };
//
// Threading: shard-local.
#ifndef KEV_REACTOR_GATE_H_
#define KEV_REACTOR_GATE_H_

#include <cstddef>
#include <type_traits>
#include <utility>

#include "reactor/errors.h"
#include "reactor/future.h"

namespace kev {

class Gate {
 public:
  // An RAII entry: leaves the gate when destroyed or Release()d. Move-only; the moved-from
  // holder holds nothing. The Gate must outlive it.
  class Holder {
   public:
    Holder() noexcept = default;
    Holder(Holder&& other) noexcept : gate_(std::exchange(other.gate_, nullptr)) {}
    Holder& operator=(Holder&& other) noexcept {
      if (this != &other) {
        Release();
        gate_ = std::exchange(other.gate_, nullptr);
      }
      return *this;
    }
    ~Holder() { Release(); }

    // Leaves the gate now (no-op if empty).
    void Release() noexcept {
      if (gate_ != nullptr) std::exchange(gate_, nullptr)->Leave();
    }

   private:
    friend class Gate;  // Only Gate::Hold() creates non-empty holders.
    explicit Holder(Gate* gate) noexcept : gate_(gate) {}
    Gate* gate_ = nullptr;
  };

  Gate() noexcept = default;
  Gate(const Gate&) = delete;
  Gate& operator=(const Gate&) = delete;
  // Destroying a gate that is still held is a contract violation (the holders would dangle):
  // close it and wait for Close()'s future first.
  ~Gate();

  // Enters the gate; each Enter() needs one Leave(). Throws kev::GateClosed after Close().
  void Enter();

  // Enters unless closed; returns whether it entered. Never throws.
  bool TryEnter() noexcept;

  // Leaves the gate; the last Leave() after Close() resolves Close()'s future (through the
  // TaskQueue, like any promise). Leave() without a matching Enter() aborts.
  void Leave() noexcept;

  // Enter() as an RAII holder. Throws kev::GateClosed after Close().
  [[nodiscard]] Holder Hold();

  // Closes the gate: later Enter()/Hold() fail with kev::GateClosed. The future resolves when
  // the count reaches zero (available at once if nothing is inside). Call once (checked).
  Future<void> Close();

  bool IsClosed() const noexcept { return closed_; }
  // Number of entries not yet left.
  size_t Count() const noexcept { return count_; }

 private:
  size_t count_ = 0;
  bool closed_ = false;
  Promise<void> drained_;  // Resolved when closed and empty.
};

// Runs `fn()` inside `gate`: enters, calls fn, and leaves when fn's result (void, U or
// Future<U>) is available. Returns Future<U>; fails with kev::GateClosed without calling fn if
// the gate is closed, and with fn's exception if it throws (the gate is left in every case).
template <class Fn>
auto WithGate(Gate& gate, Fn&& fn) {
  using R = std::invoke_result_t<Fn&>;
  using Result = typename internal::Futurize<R>::Type;
  using U = typename internal::FutureValue<Result>::Type;
  if (!gate.TryEnter()) return MakeExceptionFuture<U>(GateClosed());
  Result result = internal::Futurize<R>::Apply([&]() -> R { return std::invoke(fn); });
  if (result.Available()) {
    gate.Leave();
    return result;
  }
  return std::move(result).ThenWrapped([&gate](Result done) {
    gate.Leave();
    return done;
  });
}

}  // namespace kev

#endif  // KEV_REACTOR_GATE_H_
