#include "test/support/coord_check.hpp"

#include <algorithm>
#include <charconv>
#include <map>
#include <set>

namespace warp::test {

namespace {

constexpr std::size_t max_notes = 8;

void note(std::vector<std::string>& notes, std::string line) {
  if (notes.size() < max_notes) notes.push_back(std::move(line));
}

bool is_prefix(const std::vector<std::uint64_t>& prefix, const std::vector<std::uint64_t>& of) {
  return prefix.size() <= of.size() && std::equal(prefix.begin(), prefix.end(), of.begin());
}

bool strictly_increasing(const std::vector<std::uint64_t>& v) {
  return std::adjacent_find(v.begin(), v.end(), [](auto a, auto b) { return a >= b; }) == v.end();
}

}  // namespace

std::optional<std::vector<std::uint64_t>> parse_token_list(const std::string& value) {
  std::vector<std::uint64_t> out;
  if (value.empty()) return out;
  std::size_t pos = 0;
  while (pos <= value.size()) {
    auto comma = value.find(',', pos);
    auto end = comma == std::string::npos ? value.size() : comma;
    std::uint64_t t = 0;
    auto [p, ec] = std::from_chars(value.data() + pos, value.data() + end, t);
    if (ec != std::errc{} || p != value.data() + end || end == pos) return std::nullopt;
    out.push_back(t);
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  return out;
}

std::string format_token_list(const std::vector<std::uint64_t>& tokens) {
  std::string out;
  for (auto t : tokens) {
    if (!out.empty()) out += ',';
    out += std::to_string(t);
  }
  return out;
}

lock_check_result check_locks(const std::vector<lock_hold>& holds,
                              const std::optional<std::string>& final_register) {
  using wo = lock_hold::write_outcome;
  lock_check_result out;
  out.holds = holds.size();
  auto violation = [&](std::string line) {
    ++out.violations;
    note(out.notes, "VIOLATION " + std::move(line));
  };

  std::vector<const lock_hold*> by_token;
  for (auto& h : holds) by_token.push_back(&h);
  std::sort(by_token.begin(), by_token.end(), [](auto* a, auto* b) { return a->token < b->token; });
  for (std::size_t i = 1; i < by_token.size(); ++i)
    if (by_token[i]->token == by_token[i - 1]->token)
      violation("token " + std::to_string(by_token[i]->token) + " granted twice (clients " +
                std::to_string(by_token[i - 1]->client) + " and " +
                std::to_string(by_token[i]->client) + ")");

  // Acquisition order: sweep by invocation, with the largest token of the acquisitions
  // that returned before it.
  {
    std::vector<const lock_hold*> by_invoke = by_token, by_return = by_token;
    std::sort(by_invoke.begin(), by_invoke.end(),
              [](auto* a, auto* b) { return a->acquire_invoke_ns < b->acquire_invoke_ns; });
    std::sort(by_return.begin(), by_return.end(),
              [](auto* a, auto* b) { return a->acquire_return_ns < b->acquire_return_ns; });
    std::size_t r = 0;
    const lock_hold* max_before = nullptr;
    for (auto* h : by_invoke) {
      while (r < by_return.size() && by_return[r]->acquire_return_ns < h->acquire_invoke_ns) {
        if (!max_before || by_return[r]->token > max_before->token) max_before = by_return[r];
        ++r;
      }
      if (max_before && max_before->token >= h->token)
        violation("token " + std::to_string(h->token) + " (client " + std::to_string(h->client) +
                  ") acquired after token " + std::to_string(max_before->token) + " (client " +
                  std::to_string(max_before->client) + ") had been returned");
    }
  }

  // Every token that appears in the register must come from a write that was sent (and
  // not refused) before the read that saw it returned.
  std::map<std::uint64_t, const lock_hold*> writer;
  for (auto* h : by_token)
    if (h->write != wo::none) writer[h->token] = h;
  auto check_origin = [&](const std::vector<std::uint64_t>& list, std::int64_t read_return,
                          const std::string& what) {
    for (auto t : list) {
      auto it = writer.find(t);
      if (it == writer.end()) {
        violation(what + " holds token " + std::to_string(t) + ", which no fenced write sent");
      } else if (it->second->write == wo::refused) {
        violation(what + " holds token " + std::to_string(t) + ", whose fenced write was refused");
      } else if (it->second->write_invoke_ns > read_return) {
        violation(what + " holds token " + std::to_string(t) +
                  ", whose fenced write was sent after that read returned");
      }
    }
  };

  // For the stale-write rule: the earliest acquisition return among tokens above each.
  std::vector<std::int64_t> min_return_above(by_token.size() + 1,
                                             std::numeric_limits<std::int64_t>::max());
  for (std::size_t i = by_token.size(); i-- > 0;)
    min_return_above[i] = std::min(min_return_above[i + 1], by_token[i]->acquire_return_ns);
  // For the refusal rule: the earliest acquisition invocation among tokens above each.
  std::vector<std::int64_t> min_invoke_above(by_token.size() + 1,
                                             std::numeric_limits<std::int64_t>::max());
  for (std::size_t i = by_token.size(); i-- > 0;)
    min_invoke_above[i] = std::min(min_invoke_above[i + 1], by_token[i]->acquire_invoke_ns);

  std::map<std::uint64_t, std::vector<std::uint64_t>> acked;  // token -> list it wrote
  for (std::size_t i = 0; i < by_token.size(); ++i) {
    auto* h = by_token[i];
    auto tag = "token " + std::to_string(h->token) + " (client " + std::to_string(h->client) + ")";
    if (!h->read_done) continue;
    if (!strictly_increasing(h->read))
      violation(tag + " read a register that is not increasing: " + format_token_list(h->read));
    check_origin(h->read, h->read_return_ns, tag + "'s read");
    switch (h->write) {
      case wo::none:
        break;
      case wo::unknown:
        ++out.writes_unknown;
        break;
      case wo::ok: {
        ++out.writes_acknowledged;
        if (!h->read.empty() && h->read.back() >= h->token)
          violation(tag + ": its fenced write was acknowledged over a register already holding " +
                    std::to_string(h->read.back()));
        // The next higher token had returned before this write was sent: the lock had
        // moved on, the fence must have refused it.
        if (min_return_above[i + 1] < h->write_invoke_ns)
          violation(tag +
                    ": its fenced write was acknowledged although a higher token had been "
                    "granted before it was sent");
        auto written = h->read;
        written.push_back(h->token);
        acked[h->token] = std::move(written);
        break;
      }
      case wo::refused: {
        ++out.writes_refused;
        bool moved_on = min_invoke_above[i + 1] < h->write_return_ns;
        bool session_may_have_ended = h->write_return_ns > h->session_safe_until_ns;
        if (!moved_on && !session_may_have_ended)
          violation(tag +
                    ": its fenced write was refused while its token was current (no "
                    "higher token asked for, its session alive)");
        break;
      }
    }
  }

  // No interleaving: every read in a critical section sees, as a prefix, what the last
  // acknowledged write with a smaller token wrote (which itself had the earlier ones).
  for (auto* h : by_token) {
    if (!h->read_done) continue;
    auto it = acked.lower_bound(h->token);
    if (it == acked.begin()) continue;
    --it;
    if (!is_prefix(it->second, h->read))
      violation("token " + std::to_string(h->token) + " (client " + std::to_string(h->client) +
                ") read [" + format_token_list(h->read) +
                "], missing the acknowledged fenced write of token " + std::to_string(it->first) +
                " [" + format_token_list(it->second) + "]: critical sections interleaved");
  }

  // No acknowledged write lost.
  std::vector<std::uint64_t> final_list;
  if (final_register) {
    auto parsed = parse_token_list(*final_register);
    if (!parsed) {
      violation("the final register is malformed: " + *final_register);
      out.lost = acked.size();
      return out;
    }
    final_list = std::move(*parsed);
  }
  if (!strictly_increasing(final_list))
    violation("the final register is not increasing: " + format_token_list(final_list));
  check_origin(final_list, std::numeric_limits<std::int64_t>::max(), "the final register");
  for (auto& [token, list] : acked)
    if (!is_prefix(list, final_list)) {
      ++out.lost;
      note(out.notes, "LOST the acknowledged fenced write of token " + std::to_string(token) +
                          " [" + format_token_list(list) + "]: the final register is [" +
                          format_token_list(final_list) + "]");
    }
  return out;
}

lease_check_result check_leases(const std::vector<lease_record>& leases,
                                const std::vector<lease_read>& reads, std::int64_t extension_ms,
                                const std::vector<std::pair<std::int64_t, std::int64_t>>& outages) {
  lease_check_result out;
  out.leases = leases.size();
  out.reads = reads.size();
  // (key, value) -> the lease that attached it (values are unique per lease).
  std::map<std::pair<std::string, std::string>, const lease_record*> owner;
  for (auto& l : leases) {
    if (l.revoke_return_ns != lease_record::never) ++out.revoked;
    for (auto& kv : l.keys) {
      auto [it, fresh] = owner.emplace(kv, &l);
      if (!fresh && it->second != &l) {
        ++out.violations;
        note(out.notes, "VIOLATION (history) value " + kv.second + " of " + kv.first +
                            " attached to two leases");
      }
    }
  }
  for (auto& r : reads) {
    if (!r.value) continue;
    auto it = owner.find({r.key, *r.value});
    if (it == owner.end()) continue;
    const auto& l = *it->second;
    auto lease = "lease " + std::to_string(l.id);
    if (r.invoke_ns > l.revoke_return_ns) {
      ++out.violations;
      note(out.notes, "VIOLATION a read of " + r.key + " invoked " +
                          std::to_string((r.invoke_ns - l.revoke_return_ns) / 1'000'000) +
                          " ms after the acknowledged revoke of " + lease + " returned its value " +
                          *r.value);
    }
  }
  for (auto& l : leases) {
    if (l.unbounded || l.alive_seen.empty()) continue;
    auto last = l.grant_return_ns;
    for (auto ka : l.keepalives) last = std::max(last, ka);
    auto bound = last + (l.ttl_ms + extension_ms) * 1'000'000;
    for (auto& [from, to] : outages)  // in time order: each may push the bound into the next
      if (to > last && from < bound) bound += to - std::max(from, last);
    for (auto seen : l.alive_seen)
      if (seen > bound) {
        ++out.violations;
        note(out.notes, "VIOLATION lease " + std::to_string(l.id) + " (TTL " +
                            std::to_string(l.ttl_ms) + " ms) was found alive by a query invoked " +
                            std::to_string((seen - last) / 1'000'000) +
                            " ms after its last keep-alive returned (bound: TTL + " +
                            std::to_string(extension_ms) + " ms)");
        break;
      }
  }
  return out;
}

}  // namespace warp::test
