#include "reactor/internal/check.h"

#include <cstdio>
#include <cstdlib>

namespace kev::internal {

void CheckFailed(const char* file, int line, const char* condition,
                 const char* message) noexcept {
  // fprintf, not iostreams: this may run in a corrupted state and must not allocate much.
  std::fprintf(stderr, "kev: contract violation at %s:%d: %s (%s)\n", file, line, message,
               condition);
  std::fflush(stderr);
  std::abort();
}

}  // namespace kev::internal
