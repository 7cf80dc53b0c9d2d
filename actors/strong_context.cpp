#include "actors/strong_context.hpp"

namespace warp::detail {

namespace {
constexpr std::size_t dump_page_records = 1024;
constexpr std::size_t dump_page_bytes = 4 * 1024 * 1024;
}  // namespace

wire::reply serve(strong_replica& replica, const wire::request& req) {
  wire::reply rep;
  rep.id = req.id;
  // Readiness is read BEFORE the operation: a range that becomes ready while a read runs
  // may have read its state before the catch-up, so it must not count as a quorum member.
  bool ready = replica.ready();
  switch (req.what) {
    case wire::op::store:
      // Applied even while recovering (a max-merge never hurts); counted only when ready.
      if (req.rec) replica.apply(req.key, *req.rec);
      break;
    case wire::op::read:
      rep.rec = replica.get(req.key, true);
      break;
    case wire::op::read_version:
      rep.rec = replica.get(req.key, false);
      break;
    case wire::op::dump: {
      auto page = replica.dump(req.key, req.first, dump_page_records, dump_page_bytes);
      rep.records = std::move(page.records);
      rep.more = page.more;
      break;
    }
    case wire::op::digest:
      rep.digest = replica.digest();
      break;
  }
  if (!ready) rep.code = wire::status::not_ready;
  return rep;
}

}  // namespace warp::detail
