// DPNODE_CHECK: an invariant that stays on in release builds and prints the
// values involved before aborting. For programming errors only; anything a
// peer, a file or a user can cause returns a Status instead.
#ifndef DPNODE_BASE_CHECK_H_
#define DPNODE_BASE_CHECK_H_

#include <cstdio>
#include <cstdlib>

#define DPNODE_CHECK(cond, ...)                                                    \
  do {                                                                             \
    if (!(cond)) {                                                                 \
      std::fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
      std::fprintf(stderr, "" __VA_ARGS__);                                        \
      std::fprintf(stderr, "\n");                                                  \
      std::abort();                                                                \
    }                                                                              \
  } while (0)

#endif  // DPNODE_BASE_CHECK_H_
