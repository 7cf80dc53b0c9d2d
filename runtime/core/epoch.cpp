// Epoch-based reclamation: slot registry, epoch advance, garbage lists (see epoch.hpp).
#include "runtime/core/epoch.hpp"

#include <algorithm>

namespace warp::detail {

// Constant-initialised, so it exists before any dynamic initialiser (a static l1_store in
// another translation unit) can use it and is destroyed after all of them.
constinit epoch_domain global_epoch_domain;

namespace {

// Gives the thread's slot back when the thread exits. Separate from the trivial
// `this_thread_epoch` so that the hot path never goes through a TLS init wrapper.
struct slot_owner {
  bool armed = false;
  ~slot_owner() {
    thread_epoch_state& state = this_thread_epoch;
    if (armed && state.slot != nullptr) {
      global_epoch_domain.release_slot(state.slot);
      state.slot = nullptr;
      state.depth = 0;
    }
  }
};
thread_local slot_owner this_thread_slot_owner;

}  // namespace

reader_slot* epoch_domain::register_thread() noexcept {
  reader_slot* slot = global_epoch_domain.acquire_slot();
  this_thread_epoch.slot = slot;
  // First odr-use constructs the owner and registers its destructor for this thread.
  this_thread_slot_owner.armed = true;
  return slot;
}

reader_slot* epoch_domain::acquire_slot() {
  // Reuse a slot a finished thread gave back: registration is rare, a walk is fine.
  for (reader_slot* s = head_.load(std::memory_order_acquire); s != nullptr; s = s->next) {
    bool expected = false;
    if (!s->owned.load(std::memory_order_relaxed) &&
        s->owned.compare_exchange_strong(expected, true, std::memory_order_acq_rel))
      return s;
  }
  std::lock_guard lock{grow_mutex_};
  auto fresh = std::make_unique<reader_slot>();
  fresh->owned.store(true, std::memory_order_relaxed);
  fresh->index = static_cast<std::uint32_t>(storage_.size());
  fresh->next = head_.load(std::memory_order_relaxed);
  reader_slot* raw = fresh.get();
  storage_.push_back(std::move(fresh));
  slot_count_.store(storage_.size(), std::memory_order_relaxed);
  // seq_cst, not just release (which would publish `next` and `index` well enough): an
  // advancer whose seq_cst load of head_ misses this slot must then be ordered before
  // this thread's first pin, so the pin reads an epoch at least as new as the advancer's.
  head_.store(raw, std::memory_order_seq_cst);
  return raw;
}

void epoch_domain::release_slot(reader_slot* slot) noexcept {
  slot->state.store(0, std::memory_order_release);
  slot->owned.store(false, std::memory_order_release);
}

std::uint64_t epoch_domain::try_advance() noexcept {
  std::uint64_t epoch = epoch_.load(std::memory_order_seq_cst);
  for (reader_slot* s = head_.load(std::memory_order_seq_cst); s != nullptr; s = s->next) {
    // seq_cst pairs with the reader's seq_cst exchange: either we see its pin, or its
    // loads see every unlink that preceded our epoch read.
    const std::uint64_t state = s->state.load(std::memory_order_seq_cst);
    if ((state & 1) != 0 && (state >> 1) != epoch) return epoch;  // a reader lags behind
  }
  // CAS rather than store: two writers advancing from the same epoch must not move the
  // epoch by two while a reader that pinned the intermediate value is still inside.
  if (epoch_.compare_exchange_strong(epoch, epoch + 1, std::memory_order_seq_cst)) return epoch + 1;
  return epoch;  // someone else advanced: `epoch` holds the new value
}

void garbage_list::retire(void* ptr, deleter destroy, std::size_t bytes) {
  // Read after the unlink (seq_cst): any reader that can still see `ptr` pinned an epoch
  // <= this one, and the epoch cannot pass it + 1 while that reader stays pinned.
  const std::uint64_t epoch = epoch_domain::global().current();
  items_.push_back(item{epoch, ptr, destroy, bytes});
  pending_bytes_ += bytes;
}

std::size_t garbage_list::collect() noexcept {
  if (items_.empty()) return 0;
  epoch_domain& domain = epoch_domain::global();
  std::uint64_t epoch = domain.current();
  // Two advances separate a retire from its reclamation; attempt them both here so that
  // garbage does not wait for the next burst of writes.
  for (int i = 0; i < 2 && items_.front().epoch + 2 > epoch; ++i) epoch = domain.try_advance();
  auto first_live = std::find_if(items_.begin(), items_.end(),
                                 [epoch](const item& it) { return it.epoch + 2 > epoch; });
  std::size_t freed = 0;
  for (auto it = items_.begin(); it != first_live; ++it, ++freed) {
    pending_bytes_ -= it->bytes;
    it->destroy(it->ptr);
  }
  items_.erase(items_.begin(), first_live);
  return freed;
}

void garbage_list::free_all() noexcept {
  for (item& it : items_) it.destroy(it.ptr);
  items_.clear();
  pending_bytes_ = 0;
}

}  // namespace warp::detail
