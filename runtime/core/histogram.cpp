#include "warp/histogram.hpp"

#include <algorithm>
#include <cstdio>

namespace warp {

std::size_t latency_histogram::stripe_index() noexcept {
  // Numbered once per thread, for every histogram alike; indices are never reused, so a
  // stripe has one owner for the process's life (threads beyond share the last stripe).
  static std::atomic<std::size_t> next{0};
  thread_local const std::size_t mine =
      std::min(next.fetch_add(1, std::memory_order_relaxed), owned_stripes);
  return mine;
}

histogram_snapshot latency_histogram::snapshot() const noexcept {
  histogram_snapshot out;
  for (const auto& s : stripes_) {
    for (std::size_t i = 0; i < latency_buckets; ++i) {
      auto n = s.buckets[i].load(std::memory_order_relaxed);
      out.buckets[i] += n;
      out.count += n;
    }
    out.sum_ns += s.sum_ns.load(std::memory_order_relaxed);
  }
  return out;
}

void append_histogram(std::string& out, std::string_view name, std::string_view labels,
                      const histogram_snapshot& h) {
  auto series = [&](std::string_view suffix, std::string_view le) {
    out.append(name).append(suffix).append("{").append(labels);
    if (!le.empty()) out.append(labels.empty() ? "" : ",").append("le=\"").append(le).append("\"");
    out.append("} ");
  };
  std::uint64_t cumulative = 0;
  char buf[32];
  for (std::size_t i = 0; i < latency_buckets; ++i) {
    cumulative += h.buckets[i];
    if (i < latency_bounds_ns.size()) {
      std::snprintf(buf, sizeof buf, "%g", static_cast<double>(latency_bounds_ns[i]) / 1e9);
      series("_bucket", buf);
    } else {
      series("_bucket", "+Inf");
    }
    out.append(std::to_string(cumulative)).append("\n");
  }
  series("_sum", {});
  std::snprintf(buf, sizeof buf, "%.9g", static_cast<double>(h.sum_ns) / 1e9);
  out.append(buf).append("\n");
  series("_count", {});
  // The +Inf bucket and _count must agree: both from the same snapshot.
  out.append(std::to_string(cumulative)).append("\n");
}

}  // namespace warp
