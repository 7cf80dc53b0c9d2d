#include "actors/strong_context.hpp"

#include <caf/all.hpp>

namespace warp::detail {

namespace {
constexpr std::size_t dump_page_records = 1024;
constexpr std::size_t dump_page_bytes = 4 * 1024 * 1024;
}  // namespace

void quorum_context::enqueue(std::size_t p, wire::request req) {
  auto& peer = *peers[p];
  {
    std::lock_guard<std::mutex> g{peer.mtx};
    peer.queue.push_back(std::move(req));
  }
  if (!flush_scheduled.exchange(true, std::memory_order_acq_rel) && actor)
    caf::anon_send(actor, caf::flush_atom::value);
}

void quorum_context::deliver(wire::reply rep) {
  std::shared_ptr<pending_call> call;
  std::uint32_t slot = 0;
  {
    std::lock_guard<std::mutex> g{pending_mtx};
    auto it = pending.find(rep.id);
    if (it == pending.end()) return;  // late: the call finished without it
    call = std::move(it->second.first);
    slot = it->second.second;
    pending.erase(it);
  }
  {
    std::lock_guard<std::mutex> g{call->mtx};
    if (slot < call->replies.size() && !call->replies[slot]) {
      call->replies[slot] = std::move(rep);
      ++call->answered;
    }
  }
  call->cv.notify_all();
}

void quorum_context::fail_queue(std::size_t, std::vector<wire::request>& reqs) {
  for (auto& r : reqs) {
    counters.unreachable_replies.fetch_add(1, std::memory_order_relaxed);
    wire::reply rep;
    rep.id = r.id;
    rep.code = wire::status::unreachable;
    deliver(std::move(rep));
  }
  reqs.clear();
}

wire::reply serve(strong_replica& replica, const wire::request& req) {
  wire::reply rep;
  rep.id = req.id;
  if (req.range >= replica.ranges()) {
    rep.code = wire::status::bad_request;
    return rep;
  }
  // Readiness is read BEFORE the operation: a range that becomes ready while a read runs
  // may have read its state before the catch-up, so it must not count as a quorum member.
  bool ready = replica.ready(req.range);
  switch (req.what) {
    case wire::op::store:
      // Applied even while recovering (a max-merge never hurts); counted only when ready.
      if (req.rec) replica.apply(req.range, req.key, *req.rec);
      break;
    case wire::op::read:
      rep.rec = replica.get(req.range, req.key, true);
      break;
    case wire::op::read_version:
      rep.rec = replica.get(req.range, req.key, false);
      break;
    case wire::op::dump: {
      auto page = replica.dump(req.range, req.key, req.first, dump_page_records, dump_page_bytes);
      rep.records = std::move(page.records);
      rep.more = page.more;
      break;
    }
    case wire::op::digest:
      rep.digest = replica.digest(req.range);
      break;
  }
  if (!ready) rep.code = wire::status::not_ready;
  return rep;
}

}  // namespace warp::detail
