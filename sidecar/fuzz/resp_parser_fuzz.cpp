// libFuzzer target for the RESP parser (build with -DWARP_FUZZ=ON and clang):
//   cmake -S . -B build-fuzz -G Ninja -DWARP_FUZZ=ON -DCMAKE_CXX_COMPILER=clang++ \
//         -DCMAKE_C_COMPILER=clang && ninja -C build-fuzz warp_fuzz_resp_parser
//   build-fuzz/sidecar/warp_fuzz_resp_parser -max_total_time=60 sidecar/fuzz/corpus
// Besides "no crash, no sanitizer report", it checks the parser's main invariant: the input
// parsed in one piece and parsed in two pieces (split where the first byte says) gives the
// same commands and the same error.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "sidecar/resp_parser.hpp"
#include "sidecar/resp_writer.hpp"

namespace {

using warp::sidecar::parser_limits;
using warp::sidecar::resp_parser;

struct outcome {
  std::vector<std::vector<std::string>> commands;
  std::string error;
};

outcome parse_all(std::string_view input, std::size_t split, const parser_limits& limits) {
  resp_parser p{limits};
  outcome out;
  std::string buf;
  std::size_t start = 0, fed = 0;
  std::vector<std::string_view> args;
  const std::size_t pieces[] = {split, input.size()};
  std::size_t piece = 0;
  for (;;) {
    std::size_t consumed = 0;
    auto st = p.parse(std::span<char>(buf).subspan(start), consumed);
    if (st == resp_parser::status::complete) {
      if (consumed == 0 || consumed > buf.size() - start) __builtin_trap();
      p.args(std::string_view(buf).substr(start), args);
      if (!args.empty()) out.commands.emplace_back(args.begin(), args.end());
      start += consumed;
      continue;
    }
    if (st == resp_parser::status::error) {
      out.error = p.error();
      return out;
    }
    if (fed >= input.size()) return out;
    std::size_t n = piece < 2 ? pieces[piece++] : input.size();
    n = std::min(n, input.size() - fed);
    if (n == 0) n = input.size() - fed;
    buf.append(input.substr(fed, n));
    fed += n;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  parser_limits limits;
  limits.max_bulk_length = 1 << 20;
  limits.max_multibulk_length = 1024;
  limits.max_inline_length = 256;
  limits.unauthenticated = (data[0] & 0x80) != 0;
  std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);
  std::size_t split = input.empty() ? 0 : (data[0] & 0x7f) % (input.size() + 1);
  auto whole = parse_all(input, input.size(), limits);
  auto parts = parse_all(input, split, limits);
  if (whole.commands != parts.commands || whole.error != parts.error) __builtin_trap();
  // Echo every argument through the writer in both protocols (no crash, framing intact).
  std::string out;
  warp::sidecar::resp_writer w2{out, 2}, w3{out, 3};
  for (auto& cmd : whole.commands) {
    w2.array(cmd.size());
    for (auto& a : cmd) w2.bulk(a);
    w3.map(1);
    w3.verbatim(cmd[0]);
    w3.error(cmd[0]);
  }
  return 0;
}
