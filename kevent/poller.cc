// Poller::Create and backend selection. The backends live in io_uring_poller.cc and
// epoll_poller.cc; this file only chooses between them.
#include "kevent/poller.h"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <optional>
#include <string_view>

#include "kevent/epoll_poller.h"
#include "kevent/io_uring_poller.h"

namespace kev {

std::optional<PollerBackend> ParsePollerBackend(std::string_view name) {
  if (name == "io_uring") return PollerBackend::kIoUring;
  if (name == "epoll") return PollerBackend::kEpoll;
  if (name == "default") return PollerBackend::kDefault;
  return std::nullopt;
}

PollerBackend PollerBackendFromEnvironment() {
  const char* value = std::getenv("KEV_BACKEND");
  if (value == nullptr || *value == '\0') return PollerBackend::kDefault;
  if (std::optional<PollerBackend> backend = ParsePollerBackend(value)) return *backend;
  // Said once: a reactor creates one poller per shard and each would repeat it.
  static std::once_flag once;
  std::call_once(once, [value] {
    std::fprintf(stderr,
                 "kev: KEV_BACKEND=\"%s\" is not io_uring, epoll or default; using default\n",
                 value);
  });
  return PollerBackend::kDefault;
}

std::unique_ptr<Poller> Poller::Create(PollerBackend backend, const PollerOptions& options,
                                       int* error) {
  int ignored = 0;
  if (error == nullptr) error = &ignored;
  *error = 0;
  switch (backend) {
    case PollerBackend::kIoUring:
      return internal::IoUringPoller::Create(options, error);
    case PollerBackend::kEpoll:
      return internal::EpollPoller::Create(options, error);
    case PollerBackend::kDefault:
      break;
  }
  int uring_error = 0;
  if (std::unique_ptr<Poller> poller = internal::IoUringPoller::Create(options, &uring_error)) {
    return poller;
  }
  // Typical causes: ENOSYS (kernel without io_uring), EPERM (seccomp, or
  // kernel.io_uring_disabled), ENOMEM (RLIMIT_MEMLOCK on old kernels), EOPNOTSUPP (older than
  // 5.19). One line per process: every shard would otherwise say the same thing.
  static std::once_flag once;
  std::call_once(once, [uring_error] {
    std::fprintf(stderr, "kev: io_uring unavailable (%s); using the epoll backend\n",
                 std::strerror(-uring_error));
  });
  return internal::EpollPoller::Create(options, error);
}

}  // namespace kev

namespace kev {

// Defaults for pollers without buffer selection (SupportsBufferSelect() is false): calling
// these is a caller bug, and saying so beats a silent wrong result.
void Poller::RecvBufferSelect(int, int, IoCompletion*) {
  std::fprintf(stderr, "kev: Poller::RecvBufferSelect on a poller without buffer selection\n");
  std::abort();
}

std::span<std::byte> Poller::SelectedBuffer(uint16_t) noexcept {
  std::fprintf(stderr, "kev: Poller::SelectedBuffer on a poller without buffer selection\n");
  std::abort();
}

void Poller::ReturnBuffer(uint16_t) noexcept {
  std::fprintf(stderr, "kev: Poller::ReturnBuffer on a poller without buffer selection\n");
  std::abort();
}

}  // namespace kev
