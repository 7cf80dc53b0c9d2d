// Epoch-based reclamation (EBR) for L1's lock-free readers.
//
// Readers pin the current global epoch in a per-thread slot (their own cache line) for the
// duration of a lookup; writers unlink nodes under their shard lock and hand them to a
// garbage_list tagged with the epoch they were retired in. The global epoch only advances
// when every pinned slot has caught up with it, so an object retired in epoch r can no
// longer be reached by any reader once the epoch is r + 2 (the scheme of crossbeam-epoch,
// with seq_cst operations instead of fences so ThreadSanitizer understands it).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

namespace warp::detail {

inline constexpr std::size_t cache_line = 64;

/// One reader thread's announcement. Padded so that pinning writes only this thread's line.
struct alignas(cache_line) reader_slot {
  /// 0 = not pinned; otherwise (epoch << 1) | 1.
  std::atomic<std::uint64_t> state{0};
  /// Claimed by a live thread (slots are reused after their thread exits).
  std::atomic<bool> owned{false};
  /// Stable small number: lets per-store counters give each thread its own stripe.
  std::uint32_t index = 0;
  /// Next slot in the registry; written once before the slot is published.
  reader_slot* next = nullptr;
};

/// The process-wide epoch and the registry of reader slots. One for all L1 stores: a thread
/// pins once whichever store it reads.
class epoch_domain;
extern epoch_domain global_epoch_domain;

/// The calling thread's EBR state. Trivial and constant-initialised, so the hot path needs
/// no TLS init wrapper call (linked into an executable, the linker relaxes the access to
/// one %fs-relative load); the slot is released at thread exit by a separate thread_local
/// owner object created on registration (epoch.cpp).
/// (No tls_model("initial-exec") attribute: GCC 12's UBSan then reports a null member
/// access on it, and the relaxation gives the same code anyway.)
struct thread_epoch_state {
  reader_slot* slot = nullptr;
  std::uint32_t depth = 0;
};
inline constinit thread_local thread_epoch_state this_thread_epoch{};

class epoch_domain {
 public:
  constexpr epoch_domain() = default;
  static epoch_domain& global() noexcept { return global_epoch_domain; }

  std::uint64_t current() const noexcept { return epoch_.load(std::memory_order_seq_cst); }

  /// Advances the epoch by one if every pinned reader has seen the current one.
  /// Returns the epoch after the attempt.
  std::uint64_t try_advance() noexcept;

  /// Claims a free slot (or creates one) for the calling thread.
  reader_slot* acquire_slot();
  void release_slot(reader_slot* slot) noexcept;

  /// Slots ever created (tests check that exiting threads give theirs back).
  std::size_t slot_count() const noexcept { return slot_count_.load(std::memory_order_relaxed); }

  /// Pins the calling thread's slot (re-entrant) — used by epoch_guard.
  static reader_slot* pin() noexcept {
    thread_epoch_state& state = this_thread_epoch;
    reader_slot* slot = state.slot;
    if (slot == nullptr) [[unlikely]]
      slot = register_thread();
    if (state.depth++ == 0) {
      // A stale epoch is harmless (it only holds the epoch back). The seq_cst exchange is
      // the store-load barrier that orders this announcement before the reader's loads of
      // bucket heads (x86: one xchg, on this thread's own cache line).
      const std::uint64_t epoch = global_epoch_domain.epoch_.load(std::memory_order_seq_cst);
      slot->state.exchange((epoch << 1) | 1, std::memory_order_seq_cst);
    }
    return slot;
  }
  static void unpin() noexcept {
    thread_epoch_state& state = this_thread_epoch;
    // release: the reads of this critical section happen before a writer that sees the
    // slot unpinned (or re-pinned later) frees what they read.
    if (--state.depth == 0) state.slot->state.store(0, std::memory_order_release);
  }
  /// The calling thread's slot, registering it on first use.
  static reader_slot* thread_slot() noexcept {
    reader_slot* slot = this_thread_epoch.slot;
    return slot != nullptr ? slot : register_thread();
  }

 private:
  static reader_slot* register_thread() noexcept;

  alignas(cache_line) std::atomic<std::uint64_t> epoch_{1};
  alignas(cache_line) std::atomic<reader_slot*> head_{nullptr};
  std::atomic<std::size_t> slot_count_{0};
  std::mutex grow_mutex_;
  std::vector<std::unique_ptr<reader_slot>> storage_;
};

/// RAII pin of the calling thread; nests (only the outermost guard pins and unpins).
class epoch_guard {
 public:
  epoch_guard() noexcept : slot_(epoch_domain::pin()) {}
  ~epoch_guard() { epoch_domain::unpin(); }
  epoch_guard(const epoch_guard&) = delete;
  epoch_guard& operator=(const epoch_guard&) = delete;
  /// The pinned thread's slot (its index stripes per-thread counters).
  reader_slot* slot() const noexcept { return slot_; }

 private:
  reader_slot* slot_;
};

/// Objects unlinked by writers, waiting until no reader can still see them. Not
/// thread-safe: each L1 shard owns one and uses it under its writer lock.
class garbage_list {
 public:
  using deleter = void (*)(void*) noexcept;

  garbage_list() = default;
  garbage_list(const garbage_list&) = delete;
  garbage_list& operator=(const garbage_list&) = delete;
  ~garbage_list() { free_all(); }

  /// Takes ownership of `ptr`, freed later by `destroy(ptr)`. `bytes` is an estimate used
  /// to decide when collecting is worth a try. Must be called AFTER the object was
  /// unlinked (with a seq_cst store) so that the epoch read here is late enough.
  void retire(void* ptr, deleter destroy, std::size_t bytes);

  /// Frees what no reader can reach any more; tries to advance the epoch first.
  /// Returns how many objects were freed.
  std::size_t collect() noexcept;

  /// Collects when enough garbage piled up (cheap check, called after every write).
  void maybe_collect() noexcept {
    if (items_.size() >= collect_count || pending_bytes_ >= collect_bytes) collect();
  }

  /// Frees everything now. Only when no reader can be inside the owning structure.
  void free_all() noexcept;

  std::size_t size() const noexcept { return items_.size(); }

  static constexpr std::size_t collect_count = 64;
  static constexpr std::size_t collect_bytes = std::size_t{1} << 20;

 private:
  struct item {
    std::uint64_t epoch;
    void* ptr;
    deleter destroy;
    std::size_t bytes;
  };
  std::vector<item> items_;  // epochs non-decreasing: retired under one lock
  std::size_t pending_bytes_ = 0;
};

}  // namespace warp::detail
