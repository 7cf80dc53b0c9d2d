#include "test/support/linearizability.hpp"

#include <algorithm>
#include <map>
#include <unordered_map>
#include <unordered_set>

namespace warp::test {

namespace {

// The register's state: -1 = absent, otherwise an index into the interned values.
using state_t = int;

struct entry {
  bool is_call = false;
  std::size_t op = 0;  // index into the key's ops
  std::int64_t time = 0;
  entry* prev = nullptr;
  entry* next = nullptr;
  entry* match = nullptr;  // call -> its return
};

struct memo_key {
  std::vector<std::uint64_t> linearized;
  state_t state;
  bool operator==(const memo_key&) const = default;
};

struct memo_hash {
  std::size_t operator()(const memo_key& k) const noexcept {
    std::size_t h = std::hash<int>{}(k.state);
    for (auto w : k.linearized) h = h * 1000003u ^ std::hash<std::uint64_t>{}(w);
    return h;
  }
};

struct key_ops {
  std::vector<const register_op*> ops;
};

std::string describe(const register_op& op) {
  switch (op.what) {
    case register_op::kind::get:
      return "get -> " + (op.output ? "'" + *op.output + "'" : std::string{"(absent)"});
    case register_op::kind::set:
      return "set '" + op.input + "'";
    case register_op::kind::del:
      return "del";
  }
  return "?";
}

// Applies `op` to `state`; nullopt if the op's observed result is impossible in `state`.
std::optional<state_t> step(const register_op& op, state_t state,
                            std::unordered_map<std::string, state_t>& interned) {
  switch (op.what) {
    case register_op::kind::get: {
      if (!op.output) return state == -1 ? std::optional<state_t>{state} : std::nullopt;
      auto it = interned.find(*op.output);
      if (it == interned.end() || it->second != state) return std::nullopt;
      return state;
    }
    case register_op::kind::set:
      return interned.at(op.input);
    case register_op::kind::del:
      return -1;
  }
  return std::nullopt;
}

check_result check_key(const std::string& key, const std::vector<const register_op*>& ops,
                       std::chrono::steady_clock::time_point deadline) {
  check_result res;
  res.key = key;
  res.ops_checked = ops.size();
  const std::size_t n = ops.size();
  if (n == 0) return res;

  std::unordered_map<std::string, state_t> interned;
  for (auto* op : ops)
    if (op->what == register_op::kind::set && !interned.count(op->input))
      interned.emplace(op->input, static_cast<state_t>(interned.size()));

  // Events in time order; at equal times a return precedes a call, so operations that only
  // touch at an instant are treated as ordered (the strict reading of real-time order).
  std::vector<entry> events(2 * n);
  for (std::size_t i = 0; i < n; ++i) {
    events[2 * i] = entry{true, i, ops[i]->invoke_ns};
    events[2 * i + 1] = entry{false, i, ops[i]->return_ns};
    events[2 * i].match = &events[2 * i + 1];
  }
  std::vector<entry*> order;
  for (auto& e : events) order.push_back(&e);
  std::stable_sort(order.begin(), order.end(), [](const entry* a, const entry* b) {
    if (a->time != b->time) return a->time < b->time;
    return !a->is_call && b->is_call;
  });
  entry head;
  entry* prev = &head;
  for (auto* e : order) {
    prev->next = e;
    e->prev = prev;
    prev = e;
  }

  auto lift = [](entry* call) {
    call->prev->next = call->next;
    if (call->next) call->next->prev = call->prev;
    auto* ret = call->match;
    ret->prev->next = ret->next;
    if (ret->next) ret->next->prev = ret->prev;
  };
  auto unlift = [](entry* call) {
    auto* ret = call->match;
    ret->prev->next = ret;
    if (ret->next) ret->next->prev = ret;
    call->prev->next = call;
    if (call->next) call->next->prev = call;
  };

  std::vector<std::uint64_t> linearized((n + 63) / 64, 0);
  std::unordered_set<memo_key, memo_hash> seen;
  std::vector<std::pair<entry*, state_t>> stack;  // (lifted call, state before it)
  state_t state = -1;
  entry* cursor = head.next;
  std::size_t longest = 0;
  std::size_t steps = 0;

  while (head.next != nullptr) {
    if ((++steps & 0xfff) == 0 && std::chrono::steady_clock::now() > deadline) {
      res.outcome = check_result::verdict::gave_up;
      res.explanation = "search budget exhausted after " + std::to_string(steps) + " steps";
      return res;
    }
    if (cursor != nullptr && cursor->is_call) {
      auto next_state = step(*ops[cursor->op], state, interned);
      bool advanced = false;
      if (next_state) {
        auto bits = linearized;
        bits[cursor->op / 64] |= std::uint64_t{1} << (cursor->op % 64);
        if (seen.insert(memo_key{bits, *next_state}).second) {
          stack.emplace_back(cursor, state);
          state = *next_state;
          linearized = std::move(bits);
          lift(cursor);
          longest = std::max(longest, stack.size());
          cursor = head.next;
          advanced = true;
        }
      }
      if (!advanced) cursor = cursor->next;
    } else {
      // A return whose call is not linearized yet: backtrack.
      if (stack.empty()) {
        res.outcome = check_result::verdict::violation;
        // The first operation that could not be placed explains the violation best.
        const register_op* culprit = cursor ? ops[cursor->op] : nullptr;
        res.explanation =
            "no linearization: at most " + std::to_string(longest) + " of " + std::to_string(n) +
            " operations can be ordered" +
            (culprit ? "; stuck before the return of client " + std::to_string(culprit->client) +
                           "'s " + describe(*culprit)
                     : std::string{});
        return res;
      }
      auto [call, before] = stack.back();
      stack.pop_back();
      state = before;
      linearized[call->op / 64] &= ~(std::uint64_t{1} << (call->op % 64));
      unlift(call);
      cursor = call->next;
    }
  }
  return res;
}

}  // namespace

check_result check_linearizable(const std::vector<register_op>& history,
                                std::chrono::milliseconds budget) {
  std::map<std::string, std::vector<const register_op*>> by_key;
  for (auto& op : history) by_key[op.key].push_back(&op);
  check_result total;
  for (auto& [key, ops] : by_key) {
    auto deadline = std::chrono::steady_clock::now() + budget;
    auto r = check_key(key, ops, deadline);
    total.ops_checked += r.ops_checked;
    if (!r.ok()) {
      r.ops_checked = total.ops_checked;
      return r;
    }
  }
  return total;
}

}  // namespace warp::test
