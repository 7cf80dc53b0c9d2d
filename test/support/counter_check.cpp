#include "test/support/counter_check.hpp"

#include <algorithm>
#include <map>

namespace warp::test {

namespace {

std::string describe(const counter_op& op) {
  return std::string{op.what == counter_op::kind::incr ? "incr -> " : "get -> "} +
         std::to_string(op.value) + " (client " + std::to_string(op.client) + ")";
}

}  // namespace

counter_check_result check_counter(const std::vector<counter_op>& history,
                                   std::int64_t final_value) {
  counter_check_result out;
  constexpr std::size_t max_notes = 5;
  auto note = [&](std::string line) {
    if (out.notes.size() < max_notes) out.notes.push_back(std::move(line));
  };
  std::vector<const counter_op*> done;  // operations with a known result
  std::map<std::int64_t, const counter_op*> returned;
  for (const auto& op : history) {
    ++out.ops_checked;
    if (op.return_ns == counter_op::unknown_return) {
      if (op.what == counter_op::kind::incr) ++out.unknown;
      continue;  // a read of unknown outcome is never recorded; tolerate it anyway
    }
    done.push_back(&op);
    if (op.what != counter_op::kind::incr) continue;
    ++out.acknowledged;
    if (op.value < 1) {
      ++out.violations;
      note("an acknowledged " + describe(op) + " returned a value below 1");
    }
    auto [it, fresh] = returned.emplace(op.value, &op);
    if (!fresh) {
      ++out.violations;
      note("two acknowledged increments returned " + std::to_string(op.value) + ": " +
           describe(*it->second) + " and " + describe(op));
    }
  }

  // Real-time order: sweep the operations by invocation, folding in every operation that
  // returned before it; the largest value seen so far bounds the next one from below.
  std::vector<const counter_op*> by_return = done;
  std::sort(by_return.begin(), by_return.end(),
            [](auto* a, auto* b) { return a->return_ns < b->return_ns; });
  std::vector<const counter_op*> by_invoke = done;
  std::sort(by_invoke.begin(), by_invoke.end(),
            [](auto* a, auto* b) { return a->invoke_ns < b->invoke_ns; });
  const counter_op* max_before = nullptr;
  std::size_t r = 0;
  for (const auto* op : by_invoke) {
    while (r < by_return.size() && by_return[r]->return_ns < op->invoke_ns) {
      if (!max_before || by_return[r]->value > max_before->value) max_before = by_return[r];
      ++r;
    }
    if (!max_before) continue;
    bool stale = op->what == counter_op::kind::incr ? op->value <= max_before->value
                                                    : op->value < max_before->value;
    if (stale) {
      ++out.violations;
      note(describe(*op) + " was invoked after " + describe(*max_before) + " had returned");
    }
  }

  const auto acked = static_cast<std::int64_t>(out.acknowledged);
  const auto most = acked + static_cast<std::int64_t>(out.unknown);
  if (final_value < acked) {
    out.lost = static_cast<std::uint64_t>(acked - final_value);
    note("final value " + std::to_string(final_value) + " is below the " + std::to_string(acked) +
         " acknowledged increments");
  } else if (final_value > most) {
    ++out.violations;
    note("final value " + std::to_string(final_value) + " is above acknowledged + unknown = " +
         std::to_string(most) + ": an increment applied twice or from nowhere");
  }
  return out;
}

}  // namespace warp::test
