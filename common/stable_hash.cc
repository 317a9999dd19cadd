#include "common/stable_hash.h"

#include "absl/strings/str_format.h"

namespace medeval {
namespace {

uint64_t Mix(uint64_t z) {
  z += 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

uint64_t Fnv(absl::string_view data, uint64_t h) {
  for (unsigned char c : data) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return h;
}

}  // namespace

uint64_t StableHash(absl::string_view data, uint64_t seed) {
  return Mix(Fnv(data, 0xcbf29ce484222325ULL ^ Mix(seed)));
}

uint64_t StableHashOf(std::initializer_list<absl::string_view> parts, uint64_t seed) {
  uint64_t h = 0xcbf29ce484222325ULL ^ Mix(seed);
  for (absl::string_view p : parts) {
    h = Fnv(p, h);
    h = Fnv(absl::string_view("\x1f", 1), h);  // unit separator between parts
  }
  return Mix(h);
}

double HashToUnit(uint64_t h) { return static_cast<double>(h >> 11) * 0x1.0p-53; }

std::string HashHex(uint64_t h) { return absl::StrFormat("%016x", h); }

}  // namespace medeval
