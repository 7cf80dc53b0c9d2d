// L1: a sharded hash map whose readers take no lock and write no shared cache line.
//
// Layout: N shards (power of two) chosen by hash bits 32.., each with a power-of-two bucket
// table (load factor <= 1) of atomic chain heads. Chain nodes are immutable apart from
// their `next` link and a relaxed "last access" stamp; a write publishes a new node in
// place of the old one (or unlinks it) under the shard's mutex, and the old node goes to
// the shard's garbage list until the epoch scheme (epoch.hpp) proves no reader can hold
// it. Growing a table copies the nodes into a new table (relinking them in place could
// make a concurrent reader skip part of a chain and report a false miss).
// Details and the reasons for each choice: docs/l1.md.
#include "warp/l1.hpp"

#include "merge/rules.hpp"

#include <algorithm>
#include <bit>
#include <condition_variable>
#include <cstring>
#include <functional>
#include <mutex>
#include <new>
#include <string>
#include <thread>

#include "runtime/core/epoch.hpp"
#include "runtime/core/hot_keys.hpp"

namespace warp {

namespace {

using detail::cache_line;
using detail::epoch_guard;

// Loads on the read path are seq_cst: they must be ordered after the reader's pin (the
// seq_cst exchange in epoch_domain::pin) for the reclamation argument; on x86 and ARMv8
// a seq_cst load costs the same as an acquire load.
constexpr auto read_order = std::memory_order_seq_cst;
// Unlinks and publications: seq_cst so that the retire epoch read after them is ordered
// after the reader loads that could still find the old node (see garbage_list::retire).
constexpr auto publish_order = std::memory_order_seq_cst;

/// One entry. Key bytes follow the struct in the same allocation (one allocation per
/// entry besides the shared value buffer; 72 bytes + key).
struct node {
  node(buffer v, version ver, std::int64_t expires, std::uint32_t key_len, std::uint32_t tag_,
       std::uint32_t stamp)
      : value(std::move(v)),
        data(value->data()),
        size(value->size()),
        hlc(ver.hlc),
        ver_node(ver.node),
        key_size(key_len),
        expires_at_ms(expires),
        tag(tag_),
        last_access(stamp) {}

  std::atomic<node*> next{nullptr};
  const buffer value;
  // The buffer's bytes, cached: read() reaches the value with one dependent load fewer
  // (node -> bytes instead of node -> shared string -> bytes). Valid while `value` lives:
  // the string is immutable.
  const char* const data;
  const std::size_t size;
  const std::uint64_t hlc;
  const std::uint32_t ver_node;
  const std::uint32_t key_size;
  const std::int64_t expires_at_ms;
  const std::uint32_t tag;  ///< upper 32 bits of the key's hash: most mismatches skip memcmp
  /// Shard clock at the last read or write: the LRU approximation's age.
  std::atomic<std::uint32_t> last_access;

  const char* key_data() const noexcept { return reinterpret_cast<const char*>(this + 1); }
  std::string_view key() const noexcept { return {key_data(), key_size}; }
  std::string_view bytes() const noexcept { return {data, size}; }
  version ver() const noexcept { return version{hlc, ver_node}; }
  l1_entry_info info() const noexcept { return l1_entry_info{ver(), expires_at_ms}; }
  bool expired(std::int64_t now) const noexcept {
    return expires_at_ms != 0 && expires_at_ms <= now;
  }
  bool matches(std::uint32_t t, std::string_view k) const noexcept {
    return tag == t && key_size == k.size() &&
           (k.empty() || std::memcmp(key_data(), k.data(), k.size()) == 0);
  }
};

static_assert(sizeof(node) == 72, "node layout grew: update docs/l1.md memory figures");

void destroy_node(void* p) noexcept {
  auto* n = static_cast<node*>(p);
  n->~node();
  ::operator delete(n);
}

struct node_deleter {
  void operator()(node* n) const noexcept { destroy_node(n); }
};
using node_ptr = std::unique_ptr<node, node_deleter>;

// The key is stored inline, so the node is allocated as raw bytes and constructed in place
// (owned by node_ptr until a table links it).
node_ptr make_node(std::string_view key, buffer value, version ver, std::int64_t expires,
                   std::uint32_t tag, std::uint32_t stamp) {
  void* memory = ::operator new(sizeof(node) + key.size());
  node* n = ::new (memory)
      node(std::move(value), ver, expires, static_cast<std::uint32_t>(key.size()), tag, stamp);
  if (!key.empty()) std::memcpy(const_cast<char*>(n->key_data()), key.data(), key.size());
  return node_ptr{n};
}

node_ptr clone_node(const node& n, std::int64_t expires) {
  return make_node(n.key(), n.value, n.ver(), expires, n.tag,
                   n.last_access.load(std::memory_order_relaxed));
}

/// A bucket array; the header and the heads share one allocation (one dependent load less
/// on the read path). Owns the chains linked from it.
struct table {
  explicit table(std::size_t bucket_count) : mask(bucket_count - 1) {
    for (std::size_t i = 0; i < bucket_count; ++i) ::new (&heads()[i]) std::atomic<node*>{nullptr};
  }
  std::atomic<node*>* heads() noexcept { return reinterpret_cast<std::atomic<node*>*>(this + 1); }
  std::atomic<node*>& bucket(std::uint64_t hash) noexcept { return heads()[hash & mask]; }
  std::size_t bucket_count() const noexcept { return mask + 1; }

  std::size_t mask;
};
static_assert(alignof(table) >= alignof(std::atomic<node*>));

void destroy_table_and_chains(void* p) noexcept {
  auto* t = static_cast<table*>(p);
  for (std::size_t i = 0; i < t->bucket_count(); ++i) {
    node* n = t->heads()[i].load(std::memory_order_relaxed);
    while (n != nullptr) {
      node* next = n->next.load(std::memory_order_relaxed);
      destroy_node(n);
      n = next;
    }
  }
  t->~table();
  ::operator delete(t);
}

struct table_deleter {
  void operator()(table* t) const noexcept { destroy_table_and_chains(t); }
};
using table_ptr = std::unique_ptr<table, table_deleter>;

table_ptr make_table(std::size_t bucket_count) {
  void* memory = ::operator new(sizeof(table) + bucket_count * sizeof(std::atomic<node*>));
  return table_ptr{::new (memory) table(bucket_count)};
}

constexpr std::size_t initial_buckets = 8;
/// Entries sampled per eviction (Redis uses 5 by default; more = closer to exact LRU).
constexpr std::size_t eviction_samples = 8;
/// Per-entry bytes counted against max_bytes besides key and value: the node, its bucket
/// slot, and the shared buffer's control block + std::string header (make_buffer).
constexpr std::size_t entry_overhead = sizeof(node) + sizeof(void*) + 64;

std::size_t entry_bytes(std::size_t key_size, std::size_t value_size) noexcept {
  return key_size + value_size + entry_overhead;
}
std::size_t entry_bytes(const node& n) noexcept {
  return entry_bytes(n.key_size, n.size);
}

const buffer& empty_buffer() {
  static const buffer empty = make_buffer(std::string{});
  return empty;
}

/// For counters written only under the owning shard's lock and read by stats() from any
/// thread: a plain load+store, no locked instruction.
template <class T>
void bump(std::atomic<T>& counter, T n = 1) noexcept {
  counter.store(counter.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
}

struct alignas(cache_line) shard {
  shard() : tab(make_table(initial_buckets).release()) {}
  ~shard() { destroy_table_and_chains(tab.load(std::memory_order_relaxed)); }
  shard(const shard&) = delete;
  shard& operator=(const shard&) = delete;

  // -- read by readers (written only by writers, rarely relative to reads) -----------
  std::atomic<table*> tab;
  /// Logical LRU clock: advances on every write to this shard. Readers stamp entries with
  /// it, so recency is "how many writes ago", which is what eviction competes against.
  std::atomic<std::uint32_t> clock{0};

  // -- writers only, on their own cache lines ------------------------------------------
  alignas(cache_line) std::mutex mutex;
  // Written under the lock only; atomics because stats() and size() read them lock-free.
  std::atomic<std::int64_t> entries{0};
  std::atomic<std::int64_t> bytes{0};
  std::size_t expiring = 0;  ///< entries with an expiry: purge skips shards without any
  std::uint64_t rng = 0x9e3779b97f4a7c15ull;
  detail::garbage_list garbage;
  std::atomic<std::uint64_t> sets{0}, removes{0}, evictions{0}, expirations{0};
  std::atomic<std::uint64_t> admission_rejects{0};

  std::uint32_t tick() noexcept {
    const std::uint32_t next = clock.load(std::memory_order_relaxed) + 1;
    clock.store(next, std::memory_order_relaxed);
    return next;
  }
  std::uint64_t random() noexcept {  // xorshift64: sampling needs spread, not quality
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
  }
};

/// Hit/miss counters. A thread whose epoch slot index is below `owned_stripes` is the only
/// writer of its stripe and increments it with a plain load+store (no locked instruction,
/// no shared line); threads beyond that share the overflow stripe with atomic adds.
struct alignas(cache_line) stripe {
  std::atomic<std::uint64_t> hits{0};
  std::atomic<std::uint64_t> misses{0};
};
constexpr std::size_t owned_stripes = 64;

/// Where a key is (or would be linked) in a chain; valid under the shard lock.
struct position {
  std::atomic<node*>* link;  ///< the head or `next` pointing at `found` (or the chain end)
  node* found;
};

position locate(table& t, std::uint64_t hash, std::uint32_t tag, std::string_view key) noexcept {
  std::atomic<node*>* link = &t.bucket(hash);
  for (node* n = link->load(std::memory_order_relaxed); n != nullptr;
       n = link->load(std::memory_order_relaxed)) {
    if (n->matches(tag, key)) return {link, n};
    link = &n->next;
  }
  return {link, nullptr};
}

}  // namespace

struct l1_store::impl {
  explicit impl(l1_options opts) : options(opts) {
    std::size_t count = options.shards;
    if (count == 0) {
      const std::size_t hw = std::max(1u, std::thread::hardware_concurrency());
      count = std::clamp<std::size_t>(hw * 16, 64, 1024);
    }
    count = std::bit_ceil(std::max<std::size_t>(count, 1));
    options.shards = count;
    shard_mask = count - 1;
    shards = std::make_unique<shard[]>(count);
    stripes = std::make_unique<stripe[]>(owned_stripes + 1);
    for (std::size_t i = 0; i < count; ++i)
      shards[i].rng ^= (i + 1) * 0xbf58476d1ce4e5b9ull;  // distinct sampling sequences
    if (options.admission == l1_admission::tinylfu &&
        (options.max_entries != 0 || options.max_bytes != 0)) {
      // Sized for the entries the bound allows (a byte bound: at ~256 B per entry).
      const std::size_t capacity =
          options.max_entries != 0 ? options.max_entries : std::max<std::size_t>(options.max_bytes / 256, 64);
      sketch = std::make_unique<detail::frequency_sketch>(capacity);
    }
    if (options.purge_interval.count() > 0) purge_thread = std::thread([this] { purge_loop(); });
  }

  ~impl() {
    if (purge_thread.joinable()) {
      {
        std::lock_guard lock{purge_mutex};
        stopping = true;
      }
      purge_cv.notify_all();
      purge_thread.join();
    }
    // shards' destructors free tables and garbage: no reader may be inside any more.
  }

  // -- helpers ----------------------------------------------------------------------

  static std::uint64_t hash_of(std::string_view key) noexcept {
    return std::hash<std::string_view>{}(key);
  }
  static std::uint32_t tag_of(std::uint64_t hash) noexcept {
    return static_cast<std::uint32_t>(hash >> 32);
  }
  std::size_t shard_index(std::uint64_t hash) const noexcept { return (hash >> 32) & shard_mask; }

  /// Lock-free lookup; caller holds an epoch_guard.
  static node* find(const shard& s, std::uint64_t hash, std::string_view key) noexcept {
    const std::uint32_t tag = tag_of(hash);
    table* t = s.tab.load(read_order);
    for (node* n = t->bucket(hash).load(read_order); n != nullptr; n = n->next.load(read_order))
      if (n->matches(tag, key)) return n;
    return nullptr;
  }

  /// Writes the node's line only when the stamp changed: a read-mostly workload stamps
  /// each entry once between writes instead of on every read.
  static void touch(node& n, const shard& s) noexcept {
    const std::uint32_t now = s.clock.load(std::memory_order_relaxed);
    if (n.last_access.load(std::memory_order_relaxed) != now)
      n.last_access.store(now, std::memory_order_relaxed);
  }

  void count(const detail::reader_slot* slot, bool hit) noexcept {
    if (slot->index < owned_stripes) {
      stripe& st = stripes[slot->index];
      bump(hit ? st.hits : st.misses);
    } else {
      stripe& st = stripes[owned_stripes];
      (hit ? st.hits : st.misses).fetch_add(1, std::memory_order_relaxed);
    }
  }

  // All of the following run under the shard's lock.

  /// Entry and byte totals: exact per shard, and in store-wide atomics only when the
  /// matching bound is configured (so an unbounded store's writers share no counter line;
  /// a same-size replacement writes none either).
  void adjust(shard& s, std::int64_t entry_delta, std::int64_t byte_delta) noexcept {
    if (entry_delta != 0) {
      bump(s.entries, entry_delta);
      if (options.max_entries != 0) entries.fetch_add(entry_delta, std::memory_order_relaxed);
    }
    if (byte_delta != 0) {
      bump(s.bytes, byte_delta);
      if (options.max_bytes != 0) bytes.fetch_add(byte_delta, std::memory_order_relaxed);
    }
  }

  /// Replaces `pos.found` by `fresh`, or links `fresh` at the chain end when absent.
  void install(shard& s, position pos, node_ptr fresh) {
    node* raw = fresh.get();
    if (raw->expires_at_ms != 0) ++s.expiring;
    const auto fresh_bytes = static_cast<std::int64_t>(entry_bytes(*raw));
    if (pos.found != nullptr) {
      adjust(s, 0, fresh_bytes - static_cast<std::int64_t>(entry_bytes(*pos.found)));
      raw->next.store(pos.found->next.load(std::memory_order_relaxed), std::memory_order_relaxed);
      pos.link->store(fresh.release(), publish_order);
      retire(s, pos.found);
    } else {
      adjust(s, 1, fresh_bytes);
      pos.link->store(fresh.release(), publish_order);
      table* t = s.tab.load(std::memory_order_relaxed);
      if (static_cast<std::size_t>(s.entries.load(std::memory_order_relaxed)) > t->bucket_count())
        grow(s);
    }
  }

  /// Unlinks `pos.found` (present).
  void unlink(shard& s, position pos) {
    pos.link->store(pos.found->next.load(std::memory_order_relaxed), publish_order);
    adjust(s, -1, -static_cast<std::int64_t>(entry_bytes(*pos.found)));
    retire(s, pos.found);
  }

  /// Hands an unlinked node (already taken out of the totals) to the garbage list.
  void retire(shard& s, node* n) {
    if (n->expires_at_ms != 0) --s.expiring;
    s.garbage.retire(n, &destroy_node, entry_bytes(*n));
  }

  /// Doubles the bucket table by copying every node (see the file comment for why).
  void grow(shard& s) {
    table* old = s.tab.load(std::memory_order_relaxed);
    table_ptr fresh = make_table(old->bucket_count() * 2);
    for (std::size_t i = 0; i < old->bucket_count(); ++i) {
      for (node* n = old->heads()[i].load(std::memory_order_relaxed); n != nullptr;
           n = n->next.load(std::memory_order_relaxed)) {
        node_ptr copy = clone_node(*n, n->expires_at_ms);
        // Bucket index from the old index plus the one new hash bit: the node keeps no
        // full hash, so rehash its key (once per node per doubling).
        std::atomic<node*>& head = fresh->bucket(hash_of(n->key()));
        copy->next.store(head.load(std::memory_order_relaxed), std::memory_order_relaxed);
        head.store(copy.release(), std::memory_order_relaxed);
      }
    }
    s.tab.store(fresh.release(), publish_order);  // publishes the copies too
    s.garbage.retire(old, &destroy_table_and_chains,
                     static_cast<std::size_t>(s.bytes.load(std::memory_order_relaxed)));
  }

  struct victim_choice {
    node* victim = nullptr;
    std::size_t bucket = 0;
    bool expired = false;
  };

  /// The entry of `s` sampled LRU would evict; expired entries go first. Skips the entry
  /// of `protect` (the key just written) unless `allow_protected`.
  victim_choice pick_victim(shard& s, std::uint64_t protect_hash, std::string_view protect,
                            bool allow_protected) {
    if (s.entries.load(std::memory_order_relaxed) == 0) return {};
    table* t = s.tab.load(std::memory_order_relaxed);
    const std::uint32_t now_stamp = s.clock.load(std::memory_order_relaxed);
    const std::uint32_t protect_tag = tag_of(protect_hash);
    const std::int64_t now = s.expiring != 0 ? now_ms() : 0;
    node* victim = nullptr;
    std::size_t victim_bucket = 0;
    std::uint32_t victim_age = 0;
    bool victim_expired = false;
    std::size_t sampled = 0;
    // Consecutive buckets from a random start: entries are spread by hash, so this is a
    // random sample of the shard (as Redis' dictGetSomeKeys does) at a fraction of the
    // cost of probing random buckets in a sparse table.
    // In a sparse table (tables do not shrink after erases) stop after 64 buckets once a
    // candidate is found, rather than walking every bucket for 8 samples.
    const std::size_t start = s.random() & t->mask;
    for (std::size_t i = 0; i < t->bucket_count() && sampled < eviction_samples &&
                            !victim_expired && !(victim != nullptr && i >= 64);
         ++i) {
      const std::size_t b = (start + i) & t->mask;
      for (node* n = t->heads()[b].load(std::memory_order_relaxed); n != nullptr;
           n = n->next.load(std::memory_order_relaxed)) {
        if (!allow_protected && n->matches(protect_tag, protect)) continue;
        ++sampled;
        if (n->expired(now)) {
          victim = n, victim_bucket = b, victim_expired = true;
          break;
        }
        // Unsigned distance: correct across clock wrap-around.
        const std::uint32_t age = now_stamp - n->last_access.load(std::memory_order_relaxed);
        if (victim == nullptr || age > victim_age) victim = n, victim_bucket = b, victim_age = age;
      }
    }
    return {victim, victim_bucket, victim_expired};
  }

  /// Evicts the entry pick_victim() chooses; false when the shard has none.
  bool evict_one(shard& s, std::uint64_t protect_hash, std::string_view protect,
                 bool allow_protected) {
    const victim_choice c = pick_victim(s, protect_hash, protect, allow_protected);
    if (c.victim == nullptr) return false;
    table* t = s.tab.load(std::memory_order_relaxed);
    std::atomic<node*>* link = &t->heads()[c.bucket];
    while (link->load(std::memory_order_relaxed) != c.victim)
      link = &link->load(std::memory_order_relaxed)->next;
    unlink(s, position{link, c.victim});
    bump(c.expired ? s.expirations : s.evictions);
    return true;
  }

  /// TinyLFU: whether a new key of `hash` (`size` bytes) may enter. Only a store at its
  /// bound judges; the candidate must be estimated strictly more frequent than the entry
  /// that would be evicted for it (ties keep the incumbent, as in the paper: a one-off
  /// scan cannot flush the cache). The victim is sampled as enforce_bounds() would: the
  /// home shard first, then the following ones, one shard lock at a time (no lock held
  /// on entry, so two writers never wait on each other's shards).
  bool admit(std::size_t home, std::uint64_t hash, std::string_view key, std::size_t size) {
    const bool full =
        (options.max_entries != 0 && entries.load(std::memory_order_relaxed) >=
                                         static_cast<std::int64_t>(options.max_entries)) ||
        (options.max_bytes != 0 &&
         bytes.load(std::memory_order_relaxed) + static_cast<std::int64_t>(size) >
             static_cast<std::int64_t>(options.max_bytes));
    if (!full) return true;
    const std::uint8_t candidate = sketch->estimate(hash);
    for (std::size_t i = 0; i <= shard_mask; ++i) {
      shard& s = shards[(home + i) & shard_mask];
      std::lock_guard lock{s.mutex};
      const victim_choice c = pick_victim(s, hash, key, false);
      if (c.victim == nullptr) continue;
      if (c.expired) return true;
      return candidate > sketch->estimate(hash_of(c.victim->key()));
    }
    return true;
  }

  bool over_bounds() const noexcept {
    return (options.max_entries != 0 && entries.load(std::memory_order_relaxed) >
                                            static_cast<std::int64_t>(options.max_entries)) ||
           (options.max_bytes != 0 &&
            bytes.load(std::memory_order_relaxed) > static_cast<std::int64_t>(options.max_bytes));
  }

  /// Evicts until both bounds hold again: from the writer's own shard first (its entries
  /// are a random sample of all keys), then the following ones. Bounds are global atomic
  /// counters written by writers only, so a bound is exact for one writer and may be
  /// overshot by a few entries while several writers race.
  void enforce_bounds(std::size_t home, std::uint64_t hash, std::string_view key) {
    if (options.max_entries == 0 && options.max_bytes == 0) return;
    for (int pass = 0; pass < 2 && over_bounds(); ++pass) {
      std::size_t index = home;
      for (std::size_t visited = 0; visited <= shard_mask && over_bounds();) {
        shard& s = shards[index];
        bool evicted = false;
        {
          std::lock_guard lock{s.mutex};
          evicted = evict_one(s, hash, key, pass == 1);
          s.garbage.maybe_collect();
        }
        if (!evicted) {
          index = (index + 1) & shard_mask;
          ++visited;
        }
      }
    }
  }

  /// Removes an expired entry a reader stumbled on, unless a writer holds the lock (a
  /// read never blocks; the purge or the next touch will get it).
  void drop_if_expired(shard& s, std::uint64_t hash, std::string_view key) {
    std::unique_lock lock{s.mutex, std::try_to_lock};
    if (!lock.owns_lock()) return;
    position pos = locate(*s.tab.load(std::memory_order_relaxed), hash, tag_of(hash), key);
    if (pos.found != nullptr && pos.found->expired(now_ms())) {
      unlink(s, pos);
      bump(s.expirations);
      s.garbage.maybe_collect();
    }
  }

  std::size_t purge_shard(shard& s, std::int64_t now) {
    std::lock_guard lock{s.mutex};
    if (s.expiring == 0) return 0;
    std::size_t dropped = 0;
    table* t = s.tab.load(std::memory_order_relaxed);
    for (std::size_t i = 0; i < t->bucket_count(); ++i) {
      std::atomic<node*>* link = &t->heads()[i];
      while (node* n = link->load(std::memory_order_relaxed)) {
        if (n->expired(now)) {
          unlink(s, position{link, n});  // link now points at n's successor
          ++dropped;
        } else {
          link = &n->next;
        }
      }
    }
    bump(s.expirations, dropped);
    s.garbage.maybe_collect();
    return dropped;
  }

  std::size_t purge_all() {
    const std::int64_t now = now_ms();
    std::size_t dropped = 0;
    for (std::size_t i = 0; i <= shard_mask; ++i) dropped += purge_shard(shards[i], now);
    return dropped;
  }

  void purge_loop() {
    std::unique_lock lock{purge_mutex};
    while (!stopping) {
      purge_cv.wait_for(lock, options.purge_interval, [this] { return stopping; });
      if (stopping) break;
      lock.unlock();
      purge_all();
      // Also frees garbage of shards that stopped receiving writes.
      for (std::size_t i = 0; i <= shard_mask; ++i) {
        std::lock_guard shard_lock{shards[i].mutex};
        shards[i].garbage.collect();
      }
      lock.lock();
    }
  }

  l1_options options;
  std::size_t shard_mask = 0;
  std::unique_ptr<shard[]> shards;
  std::unique_ptr<stripe[]> stripes;
  /// TinyLFU's access frequencies (null unless admission is tinylfu and L1 is bounded).
  std::unique_ptr<detail::frequency_sketch> sketch;
  // Store-wide totals, maintained only for a configured bound (see adjust()).
  alignas(cache_line) std::atomic<std::int64_t> entries{0};
  std::atomic<std::int64_t> bytes{0};

  alignas(cache_line) std::mutex purge_mutex;
  std::condition_variable purge_cv;
  bool stopping = false;
  std::thread purge_thread;
};

l1_store::l1_store(l1_options options) : impl_(std::make_unique<impl>(options)) {}
l1_store::~l1_store() = default;

const l1_options& l1_store::options() const noexcept {
  return impl_->options;
}

// The hit path shared by read() and get(): `on_hit(node&)` runs inside the epoch guard.
template <class OnHit>
bool l1_store::lookup(std::string_view key, OnHit&& on_hit) {
  const std::uint64_t hash = impl::hash_of(key);
  shard& s = impl_->shards[impl_->shard_index(hash)];
  bool expired = false;
  // Hits and misses both count: a key kept out by admission must be able to earn its way in.
  if (impl_->sketch) [[unlikely]]
    impl_->sketch->add(hash);
  {
    epoch_guard guard;
    if (node* n = impl::find(s, hash, key)) {
      expired = n->expires_at_ms != 0 && n->expired(now_ms());
      if (!expired) {
        impl::touch(*n, s);
        impl_->count(guard.slot(), true);
        on_hit(*n);
        return true;
      }
    }
    impl_->count(guard.slot(), false);
  }
  if (expired) impl_->drop_if_expired(s, hash, key);
  return false;
}

bool l1_store::read_impl(std::string_view key, void* ctx, read_fn fn) {
  return lookup(key, [&](node& n) { fn(ctx, n.bytes(), n.info()); });
}

std::optional<buffer> l1_store::get(std::string_view key) {
  std::optional<buffer> out;
  lookup(key, [&](node& n) { out = n.value; });
  return out;
}

std::optional<l1_entry_info> l1_store::info(std::string_view key) const {
  const std::uint64_t hash = impl::hash_of(key);
  const shard& s = impl_->shards[impl_->shard_index(hash)];
  epoch_guard guard;
  node* n = impl::find(s, hash, key);
  if (n == nullptr || n->expired(n->expires_at_ms != 0 ? now_ms() : 0)) return std::nullopt;
  return n->info();
}

put_outcome l1_store::put(std::string_view key, buffer value, version ver,
                          std::int64_t expires_at_ms, bool only_if_newer) {
  if (!value) value = empty_buffer();
  const std::uint64_t hash = impl::hash_of(key);
  const std::size_t index = impl_->shard_index(hash);
  shard& s = impl_->shards[index];
  put_outcome outcome = put_outcome::inserted;
  // Judged before the home lock is taken (admit() locks shards itself); only applied if the
  // key turns out to be absent, since replacing a present key is never judged.
  const bool admitted =
      !impl_->sketch || impl_->admit(index, hash, key, entry_bytes(key.size(), value->size()));
  {
    std::lock_guard lock{s.mutex};
    position pos = locate(*s.tab.load(std::memory_order_relaxed), hash, impl::tag_of(hash), key);
    const bool live =
        pos.found != nullptr && !pos.found->expired(pos.found->expires_at_ms != 0 ? now_ms() : 0);
    if (live && only_if_newer && !merge::replaces(pos.found->ver(), ver)) return put_outcome::stale;
    if (!live && !admitted) {
      // An expired node of the key stays until the purge or a touch drops it.
      bump(s.admission_rejects);
      return put_outcome::rejected;
    }
    if (pos.found != nullptr && !live) bump(s.expirations);
    outcome = live ? put_outcome::replaced : put_outcome::inserted;
    impl_->install(
        s, pos, make_node(key, std::move(value), ver, expires_at_ms, impl::tag_of(hash), s.tick()));
    bump(s.sets);
    s.garbage.maybe_collect();
  }
  impl_->enforce_bounds(index, hash, key);
  return outcome;
}

bool l1_store::erase(std::string_view key) {
  const std::uint64_t hash = impl::hash_of(key);
  shard& s = impl_->shards[impl_->shard_index(hash)];
  std::lock_guard lock{s.mutex};
  position pos = locate(*s.tab.load(std::memory_order_relaxed), hash, impl::tag_of(hash), key);
  if (pos.found == nullptr) return false;
  const bool live = !pos.found->expired(pos.found->expires_at_ms != 0 ? now_ms() : 0);
  impl_->unlink(s, pos);
  bump(live ? s.removes : s.expirations);
  s.garbage.maybe_collect();
  return live;
}

bool l1_store::erase_if_not_newer(std::string_view key, version ver) {
  const std::uint64_t hash = impl::hash_of(key);
  shard& s = impl_->shards[impl_->shard_index(hash)];
  std::lock_guard lock{s.mutex};
  position pos = locate(*s.tab.load(std::memory_order_relaxed), hash, impl::tag_of(hash), key);
  if (pos.found == nullptr) return false;
  const bool live = !pos.found->expired(pos.found->expires_at_ms != 0 ? now_ms() : 0);
  if (live && !merge::invalidates(ver, pos.found->ver())) return false;
  impl_->unlink(s, pos);
  bump(live ? s.removes : s.expirations);
  s.garbage.maybe_collect();
  return live;
}

bool l1_store::set_expiry(std::string_view key, std::int64_t expires_at_ms) {
  const std::uint64_t hash = impl::hash_of(key);
  shard& s = impl_->shards[impl_->shard_index(hash)];
  std::lock_guard lock{s.mutex};
  position pos = locate(*s.tab.load(std::memory_order_relaxed), hash, impl::tag_of(hash), key);
  if (pos.found == nullptr) return false;
  if (pos.found->expired(pos.found->expires_at_ms != 0 ? now_ms() : 0)) {
    impl_->unlink(s, pos);
    bump(s.expirations);
  } else {
    // Nodes are immutable for readers: a new expiry is a new node sharing the buffer.
    impl_->install(s, pos, clone_node(*pos.found, expires_at_ms));
    s.garbage.maybe_collect();
    return true;
  }
  s.garbage.maybe_collect();
  return false;
}

void l1_store::update_impl(std::string_view key, void* ctx, update_fn fn) {
  const std::uint64_t hash = impl::hash_of(key);
  const std::size_t index = impl_->shard_index(hash);
  shard& s = impl_->shards[index];
  bool inserted = false;
  {
    std::lock_guard lock{s.mutex};
    position pos = locate(*s.tab.load(std::memory_order_relaxed), hash, impl::tag_of(hash), key);
    const bool live =
        pos.found != nullptr && !pos.found->expired(pos.found->expires_at_ms != 0 ? now_ms() : 0);
    l1_entry_info info = live ? pos.found->info() : l1_entry_info{};
    std::optional<buffer> next = fn(ctx, live ? &pos.found->value : nullptr, &info);
    if (!next) return;  // leave as is
    if (!*next) {       // remove
      if (pos.found != nullptr) {
        impl_->unlink(s, pos);
        bump(live ? s.removes : s.expirations);
      }
    } else {
      if (pos.found != nullptr && !live) bump(s.expirations);
      impl_->install(s, pos,
                     make_node(key, std::move(*next), info.ver, info.expires_at_ms,
                               impl::tag_of(hash), s.tick()));
      bump(s.sets);
      inserted = true;
    }
    s.garbage.maybe_collect();
  }
  if (inserted) impl_->enforce_bounds(index, hash, key);
}

void l1_store::clear() {
  for (std::size_t i = 0; i <= impl_->shard_mask; ++i) {
    shard& s = impl_->shards[i];
    std::lock_guard lock{s.mutex};
    table* old = s.tab.load(std::memory_order_relaxed);
    s.tab.store(make_table(initial_buckets).release(), publish_order);
    const std::int64_t entries = s.entries.load(std::memory_order_relaxed);
    const std::int64_t bytes = s.bytes.load(std::memory_order_relaxed);
    s.garbage.retire(old, &destroy_table_and_chains, static_cast<std::size_t>(bytes));
    impl_->adjust(s, -entries, -bytes);
    bump(s.removes, static_cast<std::uint64_t>(entries));
    s.expiring = 0;
    s.garbage.maybe_collect();
  }
}

std::size_t l1_store::purge_expired() {
  return impl_->purge_all();
}

void l1_store::for_each_impl(void* ctx, visit_fn fn) const {
  const std::int64_t now = now_ms();
  for (std::size_t i = 0; i <= impl_->shard_mask; ++i) {
    // One pin per shard, so a long walk does not hold reclamation back for its whole run.
    epoch_guard guard;
    table* t = impl_->shards[i].tab.load(read_order);
    for (std::size_t b = 0; b < t->bucket_count(); ++b)
      for (node* n = t->heads()[b].load(read_order); n != nullptr; n = n->next.load(read_order))
        if (!n->expired(now)) fn(ctx, n->key(), n->value, n->info());
  }
}

l1_stats l1_store::stats() const {
  l1_stats out;
  for (std::size_t i = 0; i <= owned_stripes; ++i) {
    out.hits += impl_->stripes[i].hits.load(std::memory_order_relaxed);
    out.misses += impl_->stripes[i].misses.load(std::memory_order_relaxed);
  }
  for (std::size_t i = 0; i <= impl_->shard_mask; ++i) {
    const shard& s = impl_->shards[i];
    out.sets += s.sets.load(std::memory_order_relaxed);
    out.removes += s.removes.load(std::memory_order_relaxed);
    out.evictions += s.evictions.load(std::memory_order_relaxed);
    out.expirations += s.expirations.load(std::memory_order_relaxed);
    out.admission_rejects += s.admission_rejects.load(std::memory_order_relaxed);
  }
  std::int64_t entries = 0, bytes = 0;
  for (std::size_t i = 0; i <= impl_->shard_mask; ++i) {
    entries += impl_->shards[i].entries.load(std::memory_order_relaxed);
    bytes += impl_->shards[i].bytes.load(std::memory_order_relaxed);
  }
  out.entries = static_cast<std::uint64_t>(std::max<std::int64_t>(0, entries));
  out.bytes = static_cast<std::uint64_t>(std::max<std::int64_t>(0, bytes));
  return out;
}

std::size_t l1_store::size() const {
  std::int64_t entries = 0;
  for (std::size_t i = 0; i <= impl_->shard_mask; ++i)
    entries += impl_->shards[i].entries.load(std::memory_order_relaxed);
  return static_cast<std::size_t>(std::max<std::int64_t>(0, entries));
}

}  // namespace warp
