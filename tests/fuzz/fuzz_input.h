// tests/fuzz/fuzz_input.h: helpers shared by the kevent fuzz targets.
//
// ByteReader turns a libFuzzer input into a program: each call takes the next bytes and maps
// them onto a small range, and once the input is exhausted every call returns the low end of
// its range (so a program always terminates and short inputs stay meaningful). It is a tiny
// stand-in for clang's FuzzedDataProvider, which GCC builds (the Bazel replay tests) lack.
//
// FUZZ_CHECK aborts with the failed condition: libFuzzer reports that as a crash, and the
// replay tests (fuzz_replay_main.cc) as a failed test.
//
// Example:
//   ByteReader in(data, size);
//   while (!in.empty()) {
//     switch (in.Range(0, 3)) { ... }
//   }
#ifndef KEV_TESTS_FUZZ_FUZZ_INPUT_H_
#define KEV_TESTS_FUZZ_FUZZ_INPUT_H_

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#define FUZZ_CHECK(cond)                                                                 \
  do {                                                                                   \
    if (!(cond)) {                                                                       \
      std::fprintf(stderr, "%s:%d: fuzz check failed: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                      \
    }                                                                                    \
  } while (0)

namespace kev::fuzz {

class ByteReader {
 public:
  ByteReader(const uint8_t* data, size_t size) : data_(data), size_(size) {}

  bool empty() const { return pos_ >= size_; }
  size_t remaining() const { return empty() ? 0 : size_ - pos_; }

  uint8_t U8() { return empty() ? 0 : data_[pos_++]; }
  uint16_t U16() { return static_cast<uint16_t>(U8() | (U8() << 8)); }
  uint32_t U32() { return static_cast<uint32_t>(U16() | (static_cast<uint32_t>(U16()) << 16)); }
  uint64_t U64() { return U32() | (static_cast<uint64_t>(U32()) << 32); }
  bool Bool() { return (U8() & 1) != 0; }
  // A value in [lo, hi] (hi - lo < 2^32), from one byte when the range fits in one.
  uint32_t Range(uint32_t lo, uint32_t hi) {
    const uint64_t span = static_cast<uint64_t>(hi) - lo + 1;
    const uint64_t raw = span <= 256 ? U8() : span <= 65536 ? U16() : U32();
    return lo + static_cast<uint32_t>(raw % span);
  }
  // True with probability about n/256.
  bool Chance(unsigned n) { return U8() < n; }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
};

}  // namespace kev::fuzz

#endif  // KEV_TESTS_FUZZ_FUZZ_INPUT_H_
