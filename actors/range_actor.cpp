#include "actors/range_actor.hpp"

#include <string>
#include <unordered_map>
#include <vector>

#include <caf/all.hpp>

#include "actors/cluster_actor.hpp"
#include "bus/envelope.hpp"

namespace warp::actors {

namespace {

/// State of a range actor: the misses waiting for a fetch in flight, per key.
struct range_state {
  cluster_context* ctx = nullptr;
  std::uint32_t range = 0;
  std::unordered_map<std::string, std::vector<caf::response_promise>> waiting;
  static inline const char* name = "warp.range";
};

using range_actor = caf::stateful_actor<range_state>;

std::string reply_bytes(cluster_context& ctx, const result<std::optional<record>>& r) {
  bus::fetch_reply rep;
  rep.header.sender = ctx.self_id;
  rep.header.incarnation = ctx.incarnation;
  if (r && *r) {
    rep.found = true;
    rep.rec.key.clear();  // the requester knows its key
    rep.rec.ver = (*r)->ver;
    rep.rec.expires_at_ms = (*r)->expires_at_ms;
    rep.rec.kind = bus::record_kind::value;
    rep.rec.value = (*r)->value;
  }
  auto bytes = bus::encode(rep, ctx.limits);
  return bytes ? std::move(*bytes) : std::string{};
}

caf::behavior range_impl(range_actor* self, cluster_context* ctx, std::uint32_t range) {
  self->state.ctx = ctx;
  self->state.range = range;
  return {
      [=](fetch_atom, const std::string& key) -> caf::result<std::string> {
        auto rp = self->make_response_promise();
        auto& list = self->state.waiting[key];
        list.push_back(rp);
        if (list.size() == 1) {
          auto me = caf::actor_cast<caf::actor>(self);
          ctx->pool->post([ctx, me, key] {
            auto r = ctx->host->local_fetch(key);
            if (!r) {
              caf::anon_send(me, fetched_atom::value, key, false, std::string{});
              return;
            }
            caf::anon_send(me, fetched_atom::value, key, true, reply_bytes(*ctx, r));
          });
        }
        return rp;
      },
      [=](fetched_atom, const std::string& key, bool ok, std::string& bytes) {
        auto it = self->state.waiting.find(key);
        if (it == self->state.waiting.end()) return;
        auto list = std::move(it->second);
        self->state.waiting.erase(it);
        ctx->counters.owner_fetches_served.fetch_add(list.size(), std::memory_order_relaxed);
        for (auto& rp : list) {
          if (ok && !bytes.empty())
            rp.deliver(bytes);
          else
            rp.deliver(caf::make_error(caf::sec::runtime_error, "owner fetch failed"));
        }
      },
  };
}

}  // namespace

caf::actor spawn_range_actor(caf::actor_system& sys, cluster_context& ctx, std::uint32_t range) {
  return sys.spawn(range_impl, &ctx, range);
}

cluster_stats cluster_counters::snapshot() const {
  cluster_stats s;
#define WARP_COPY(name) s.name = name.load(std::memory_order_relaxed);
  WARP_CLUSTER_COUNTERS(WARP_COPY)
#undef WARP_COPY
  return s;
}

}  // namespace warp::actors
