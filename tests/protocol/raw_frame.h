// Hand-built Cap'n Proto words for frames no honest encoder would write
// (aliased pointers, zero-sized list elements, unknown union tags). Pointer
// layouts follow the Cap'n Proto encoding spec; offsets are in words from
// the end of the pointer word.
#ifndef DPNODE_TESTS_PROTOCOL_RAW_FRAME_H_
#define DPNODE_TESTS_PROTOCOL_RAW_FRAME_H_

#include <cstdint>
#include <cstring>
#include <vector>

#include "protocol/messages.h"

namespace dpnode::protocol::testing {

inline uint64_t StructPtr(int32_t offset, uint16_t data_words, uint16_t ptr_count) {
  return uint64_t{static_cast<uint32_t>(offset) << 2} | (uint64_t{data_words} << 32) |
         (uint64_t{ptr_count} << 48);
}

// Element size codes: 2 = byte, 5 = 8 bytes, 7 = composite (count = words).
inline uint64_t ListPtr(int32_t offset, uint8_t element_size, uint32_t count) {
  return 1 | uint64_t{static_cast<uint32_t>(offset) << 2} | (uint64_t{element_size} << 32) |
         (uint64_t{count} << 35);
}

// The offset that makes a pointer stored at word `at` point to word `target`.
inline int32_t Offset(size_t at, size_t target) {
  return static_cast<int32_t>(static_cast<int64_t>(target) - static_cast<int64_t>(at) - 1);
}

// One-segment frame: the segment table word, then `segment`.
inline Bytes SingleSegmentFrame(const std::vector<uint64_t>& segment) {
  std::vector<uint64_t> words;
  words.push_back(uint64_t{static_cast<uint32_t>(segment.size())} << 32);
  words.insert(words.end(), segment.begin(), segment.end());
  Bytes out(words.size() * 8);
  std::memcpy(out.data(), words.data(), out.size());
  return out;
}

inline uint64_t DoubleBits(double d) {
  uint64_t bits;
  std::memcpy(&bits, &d, sizeof bits);
  return bits;
}

}  // namespace dpnode::protocol::testing

#endif  // DPNODE_TESTS_PROTOCOL_RAW_FRAME_H_
