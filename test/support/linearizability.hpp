// A linearizability checker for single-key registers (get / set / delete), in the style of
// Wing & Gong's search with Lowe's memoization (as Porcupine does it), applied per key:
// linearizability is compositional, so a multi-key history is linearizable iff every
// key's sub-history is.
//
// Operations carry wall-clock invoke/return bounds. An operation whose outcome is unknown
// (timeout, node killed mid-request) gets return_ns = unknown_return: it may take effect at
// any point after its invocation, or never (it can always be placed last, unobserved).
// Operations known to have failed without effect must be left out of the history.
#pragma once

#include <chrono>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <vector>

namespace warp::test {

struct register_op {
  enum class kind : std::uint8_t { get, set, del };
  kind what = kind::get;
  std::string key;
  /// set: the value written.
  std::string input;
  /// get: the value read; nullopt = the key was absent.
  std::optional<std::string> output;
  std::int64_t invoke_ns = 0;
  std::int64_t return_ns = 0;
  int client = 0;

  static constexpr std::int64_t unknown_return = std::numeric_limits<std::int64_t>::max();
};

struct check_result {
  enum class verdict : std::uint8_t { linearizable, violation, gave_up };
  verdict outcome = verdict::linearizable;
  std::size_t ops_checked = 0;
  /// The first key found not linearizable (or where the search gave up) and why.
  std::string key;
  std::string explanation;
  bool ok() const { return outcome == verdict::linearizable; }
};

/// Checks a history of operations on any number of keys. Every key starts absent.
/// `budget` bounds the search per key; running out yields verdict::gave_up (never a pass).
check_result check_linearizable(const std::vector<register_op>& history,
                                std::chrono::milliseconds budget = std::chrono::seconds{10});

}  // namespace warp::test
