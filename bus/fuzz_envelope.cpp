// libFuzzer entry point for every decoder of the wire envelope (bus/envelope.hpp).
// Build: cmake -S . -B build-fuzz -G Ninja -DWARP_FUZZ=ON -DCMAKE_CXX_COMPILER=clang++
//        -DCMAKE_C_COMPILER=clang && ninja -C build-fuzz warp_fuzz_envelope
// Run:   build-fuzz/bus/warp_fuzz_envelope -max_total_time=60
// A decode must either fail with codec_error or produce something that re-encodes and
// decodes to the same thing.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "bus/envelope.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace warp::bus;
  std::string_view bytes{reinterpret_cast<const char*>(data), size};
  wire_limits lim;
  lim.max_message_bytes = 1 << 20;
  lim.max_records = 1024;
  lim.max_members = 64;
  (void)decode_header(bytes, lim);
  if (auto b = decode_batch(bytes, lim)) {
    auto again = encode(*b, lim);
    if (!again) std::abort();
    auto back = decode_batch(*again, lim);
    if (!back || back->records != b->records || !(back->header == b->header)) std::abort();
  }
  if (auto h = decode_heartbeat(bytes, lim)) {
    if (!encode(*h, lim)) std::abort();
  }
  (void)decode_fetch_reply(bytes, lim);
  return 0;
}
