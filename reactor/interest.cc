#include "reactor/interest.h"

namespace kev {

Future<ukevent> WaitFor(ukevent uk) { co_return co_await Interest(uk); }

Future<ukevent> WaitFor(ukevent uk, AbortSource& abort) { co_return co_await Interest(uk, abort); }

}  // namespace kev
