#include "runtime/modes/warmup.hpp"

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "bus/hot_keys_wire.hpp"
#include "runtime/core/log.hpp"
#include "runtime/modes/node_state.hpp"

namespace warp::detail {

namespace {

using std::chrono::steady_clock;

/// A rate-limited load waits this long before it tries again ...
constexpr auto rate_limit_pause = std::chrono::milliseconds{20};
/// ... and the whole warm-up gives up once it has waited this long in all.
constexpr auto max_rate_limit_wait = std::chrono::seconds{30};

std::filesystem::path hot_keys_file(const node_state& st) {
  return std::filesystem::path{st.config.data_dir} / "hotkeys";
}

}  // namespace

void warm_keys(node_state& st, const std::vector<std::string>& keys, std::string_view why) {
  const std::size_t total = std::min(keys.size(), st.config.hot_keys.warmup_limit);
  st.warmup_runs.fetch_add(1, std::memory_order_relaxed);
  if (total == 0) {
    log()->info("warm-up ({}): no keys to load", why);
    return;
  }
  st.warmups_running.fetch_add(1, std::memory_order_relaxed);
  const auto start = steady_clock::now();
  auto last_log = start;
  std::size_t loaded = 0, failed = 0, absent = 0, done = 0;
  steady_clock::duration waited{};
  log()->info("warm-up ({}): loading {} keys into L1", why, total);
  std::string stop_reason;
  for (; done < total && !st.stopped.load(std::memory_order_relaxed); ++done) {
    const std::string& key = keys[done];
    if (!st.config.limits.check_key(key)) {
      ++failed;
      continue;
    }
    // Strong keys are never cached in L1.
    if (st.patterns.lookup(key).consistency == mode::strong_distributed) continue;
    if (st.l1->contains(key)) {
      ++loaded;
      continue;
    }
    auto r = st.writes.read_local(key);
    while (!r && r.code() == errc::rate_limited && waited < max_rate_limit_wait &&
           !st.stopped.load(std::memory_order_relaxed)) {
      // Clients share the limiter: the warm-up takes the tokens they leave.
      std::this_thread::sleep_for(rate_limit_pause);
      waited += rate_limit_pause;
      r = st.writes.read_local(key);
    }
    if (r && *r) {
      ++loaded;
    } else if (r) {
      ++absent;
    } else {
      ++failed;
      if (r.code() == errc::rate_limited) {
        stop_reason = "the storage rate limit left no room";
      } else if (r.code() == errc::storage_unavailable || r.code() == errc::timeout) {
        // Storage is down or the breaker is open: more loads would only add to it.
        stop_reason = r.err().to_string();
      }
      if (!stop_reason.empty()) {
        ++done;
        break;
      }
    }
    const auto now = steady_clock::now();
    if (now - last_log >= std::chrono::seconds{1}) {
      last_log = now;
      log()->info("warm-up ({}): {}/{} keys, {} loaded", why, done + 1, total, loaded);
    }
  }
  failed += total - done;  // not attempted (stopped early)
  st.warmup_loaded.fetch_add(loaded, std::memory_order_relaxed);
  st.warmup_failed.fetch_add(failed, std::memory_order_relaxed);
  st.warmup_absent.fetch_add(absent, std::memory_order_relaxed);
  st.warmups_running.fetch_sub(1, std::memory_order_relaxed);
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(steady_clock::now() - start).count();
  if (!stop_reason.empty())
    log()->warn("warm-up ({}): stopped after {}/{} keys: {}; {} loaded", why, done, total,
                stop_reason, loaded);
  else
    log()->info("warm-up ({}): done in {} ms: {} loaded, {} absent in storage, {} failed", why,
                ms, loaded, absent, failed);
}

std::vector<std::string> sample_storage_keys(node_state& st, std::size_t limit, std::size_t budget,
                                             const std::function<bool(std::string_view)>& want) {
  std::vector<std::string> out;
  std::string after;
  std::size_t seen = 0;
  while (out.size() < limit && seen < budget && !st.stopped.load(std::memory_order_relaxed)) {
    auto page = st.store->scan(after, std::min<std::size_t>(1000, budget - seen));
    if (!page) {
      log()->warn("warm-up: cannot list keys in storage: {}", page.err().to_string());
      break;
    }
    if (page->empty()) break;
    seen += page->size();
    for (auto& k : *page)
      if (out.size() < limit && want(k)) out.push_back(k);
    after = page->back();
  }
  return out;
}

void save_hot_keys(node_state& st) {
  if (!st.hot || !st.config.hot_keys.warmup || st.config.data_dir.empty()) return;
  auto top = st.hot->top(st.config.hot_keys.warmup_limit);
  if (top.empty()) return;
  std::vector<bus::hot_key_item> items;
  items.reserve(top.size());
  for (auto& h : top) items.push_back({std::move(h.key), h.count});
  std::error_code ec;
  std::filesystem::create_directories(st.config.data_dir, ec);
  const auto path = hot_keys_file(st);
  const auto tmp = path.string() + ".tmp";
  {
    std::ofstream f{tmp, std::ios::binary | std::ios::trunc};
    f << bus::encode_hot_keys(items);
    if (!f) {
      log()->warn("cannot save hot keys to {}", tmp);
      return;
    }
  }
  std::filesystem::rename(tmp, path, ec);
  if (ec) log()->warn("cannot save hot keys to {}: {}", path.string(), ec.message());
}

void start_warmup(node_state& st) {
  if (!st.executor) return;
  st.executor->post([&st] {
    std::vector<std::string> keys;
    const auto path = hot_keys_file(st);
    const std::size_t limit = st.config.hot_keys.warmup_limit;
    std::string why = "start, storage sample";
    std::error_code ec;
    if (std::filesystem::exists(path, ec)) {
      // Bounded before reading: a list of `limit` keys of the largest allowed size.
      const auto size = std::filesystem::file_size(path, ec);
      const std::size_t max_size = 6 + limit * (12 + st.config.limits.max_key_size);
      if (!ec && size <= max_size) {
        std::ifstream f{path, std::ios::binary};
        std::string bytes(static_cast<std::size_t>(size), '\0');
        f.read(bytes.data(), static_cast<std::streamsize>(bytes.size()));
        auto items = bus::decode_hot_keys(bytes, limit, st.config.limits.max_key_size);
        if (items) {
          for (auto& it : *items) keys.push_back(std::move(it.key));
          why = "start, hot keys saved at the last stop";
        } else {
          log()->warn("warm-up: ignoring {}: {}", path.string(), items.err().to_string());
        }
      } else {
        log()->warn("warm-up: ignoring {}: unreadable or larger than {} bytes", path.string(),
                    max_size);
      }
    }
    if (keys.empty())
      keys = sample_storage_keys(st, limit, std::max<std::size_t>(limit * 10, 10'000),
                                 [](std::string_view) { return true; });
    warm_keys(st, keys, why);
  });
}

}  // namespace warp::detail
