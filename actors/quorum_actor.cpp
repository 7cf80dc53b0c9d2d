#include "actors/quorum_actor.hpp"

#include <chrono>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include <spdlog/spdlog.h>
#include <caf/all.hpp>
#include <caf/io/all.hpp>
#include <caf/io/basp_broker.hpp>

#include "bus/node_transport.hpp"

namespace warp::actors {

namespace {

using tick_atom = caf::atom_constant<caf::atom("warpqtick")>;
using steady = std::chrono::steady_clock;

constexpr auto tick_interval = std::chrono::milliseconds{200};
constexpr auto connect_retry = std::chrono::milliseconds{1000};
/// Encoded bytes per message before a batch is split (keeps one message from hogging the
/// connection; the hard bound is strong_limits::max_message_bytes).
constexpr std::size_t chunk_bytes = 1024 * 1024;
constexpr std::size_t chunk_items = 4096;

/// State of the quorum actor: the shared context plus the peer handles, which only this
/// actor touches.
struct quorum_state {
  detail::quorum_context* ctx = nullptr;
  struct peer_link {
    caf::actor handle;  ///< the peer's quorum actor, once found
    std::optional<steady::time_point> connecting_since;
  };
  std::vector<peer_link> links;                           ///< by peer index
  std::unordered_map<caf::node_id, std::size_t> by_node;  ///< CAF node -> peer index
  caf::actor basp;
  static inline const char* name = "warp.quorum";
};

using quorum_actor = caf::stateful_actor<quorum_state>;

template <class Batch, class Item>
void send_chunked(quorum_actor* self, const caf::actor& dest, caf::atom_value atom,
                  const detail::wire::header& head, std::vector<Item>& items,
                  detail::quorum_context& ctx) {
  std::size_t i = 0;
  while (i < items.size()) {
    Batch batch;
    batch.head = head;
    std::size_t bytes = 0;
    while (i < items.size() &&
           (batch.items.empty() || (bytes + detail::wire::approx_size(items[i]) <= chunk_bytes &&
                                    batch.items.size() < chunk_items))) {
      bytes += detail::wire::approx_size(items[i]);
      batch.items.push_back(std::move(items[i]));
      ++i;
    }
    auto enc = detail::wire::encode(batch, ctx.limits);
    if (!enc) {
      if (auto log = spdlog::get("warp"))
        log->error("quorum: cannot encode a batch: {}", enc.err().to_string());
      continue;
    }
    if (atom == quorum_request_atom::value)
      self->send(dest, quorum_request_atom::value, std::move(*enc));
    else
      self->send(dest, quorum_reply_atom::value, std::move(*enc));
  }
}

class quorum_logic {
 public:
  explicit quorum_logic(quorum_actor* self) : self_(self), st_(self->state), ctx_(*st_.ctx) {}

  void tick() {
    auto now = steady::now();
    for (std::size_t p = 0; p < st_.links.size(); ++p) {
      auto& l = st_.links[p];
      if (l.handle) continue;
      if (l.connecting_since && now - *l.connecting_since < connect_retry) continue;
      contact(p);
    }
  }

  void contact(std::size_t p) {
    auto& peer = *ctx_.peers[p];
    st_.links[p].connecting_since = steady::now();
    auto mm = bus::node_middleman(self_->system());
    auto* self = self_;
    self_->request(mm, std::chrono::seconds(2), caf::connect_atom::value, peer.host, peer.port)
        .then(
            [self, p](const caf::node_id& nid, caf::strong_actor_ptr&,
                      const std::set<std::string>&) {
              if (nid == self->system().node()) return;
              self->state.by_node[nid] = p;
              self->send(self->state.basp, caf::forward_atom::value, nid, caf::atom("ConfigServ"),
                         caf::make_message(caf::get_atom::value, quorum_registry_name()));
            },
            [](caf::error&) { /* retried after connect_retry */ });
  }

  void found(caf::strong_actor_ptr& ptr) {
    if (!ptr || ptr->node() == self_->system().node()) return;
    auto it = st_.by_node.find(ptr->node());
    if (it == st_.by_node.end()) return;
    auto p = it->second;
    auto hdl = caf::actor_cast<caf::actor>(ptr);
    auto& l = st_.links[p];
    if (l.handle == hdl) return;
    l.handle = hdl;
    l.connecting_since.reset();
    self_->monitor(hdl);
    ctx_.peers[p]->connected.store(true, std::memory_order_release);
  }

  void on_down(const caf::down_msg& dm) {
    for (std::size_t p = 0; p < st_.links.size(); ++p) {
      auto& l = st_.links[p];
      if (l.handle && l.handle.address() == dm.source) {
        l.handle = nullptr;
        l.connecting_since.reset();
        ctx_.peers[p]->connected.store(false, std::memory_order_release);
      }
    }
  }

  void flush() {
    ctx_.flush_scheduled.store(false, std::memory_order_release);
    std::vector<detail::wire::request> reqs;
    for (std::size_t p = 0; p < ctx_.peers.size(); ++p) {
      auto& peer = *ctx_.peers[p];
      {
        std::lock_guard<std::mutex> g{peer.mtx};
        if (peer.queue.empty()) continue;
        reqs.swap(peer.queue);
      }
      auto& l = st_.links[p];
      if (!l.handle) {
        ctx_.fail_queue(p, reqs);
        continue;
      }
      ctx_.counters.requests_sent.fetch_add(reqs.size(), std::memory_order_relaxed);
      ctx_.counters.batches_sent.fetch_add(1, std::memory_order_relaxed);
      send_chunked<detail::wire::request_batch>(self_, l.handle, quorum_request_atom::value, head(),
                                                reqs, ctx_);
      reqs.clear();
    }
  }

  void on_requests(const std::string& bytes) {
    auto batch = detail::wire::decode_requests(bytes, ctx_.limits);
    if (!batch) {
      ctx_.counters.decode_errors.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    auto dest = caf::actor_cast<caf::actor>(self_->current_sender());
    if (!dest) return;
    std::vector<detail::wire::reply> replies;
    replies.reserve(batch->items.size());
    bool mismatch = batch->head.fingerprint != ctx_.fingerprint;
    if (mismatch) ctx_.counters.fingerprint_mismatches.fetch_add(1, std::memory_order_relaxed);
    for (auto& req : batch->items) {
      if (mismatch) {
        detail::wire::reply rep;
        rep.id = req.id;
        rep.code = detail::wire::status::mismatch;
        replies.push_back(std::move(rep));
      } else {
        replies.push_back(detail::serve(*ctx_.replica, req));
      }
    }
    ctx_.counters.requests_served.fetch_add(replies.size(), std::memory_order_relaxed);
    ctx_.counters.batches_served.fetch_add(1, std::memory_order_relaxed);
    send_chunked<detail::wire::reply_batch>(self_, dest, quorum_reply_atom::value, head(), replies,
                                            ctx_);
  }

  void on_replies(const std::string& bytes) {
    auto batch = detail::wire::decode_replies(bytes, ctx_.limits);
    if (!batch) {
      ctx_.counters.decode_errors.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    for (auto& rep : batch->items) ctx_.deliver(std::move(rep));
  }

 private:
  detail::wire::header head() const {
    detail::wire::header h;
    h.fingerprint = ctx_.fingerprint;
    h.incarnation = ctx_.incarnation;
    h.hlc_now = ctx_.clock_now ? ctx_.clock_now() : 0;
    return h;
  }

  quorum_actor* self_;
  quorum_state& st_;
  detail::quorum_context& ctx_;
};

caf::behavior quorum_impl(quorum_actor* self, detail::quorum_context* ctx) {
  auto& st = self->state;
  st.ctx = ctx;
  st.links.resize(ctx->peers.size());
  st.basp = self->system().middleman().named_broker<caf::io::basp_broker>(caf::atom("BASP"));
  self->set_down_handler([=](caf::down_msg& dm) { quorum_logic{self}.on_down(dm); });
  // Stray or newer-protocol messages are dropped, never a crash.
  self->set_default_handler(caf::drop);
  self->send(self, tick_atom::value);
  return {
      [=](tick_atom) {
        quorum_logic{self}.tick();
        self->delayed_send(self, tick_interval, tick_atom::value);
      },
      [=](caf::flush_atom) { quorum_logic{self}.flush(); },
      [=](quorum_request_atom, const std::string& bytes) { quorum_logic{self}.on_requests(bytes); },
      [=](quorum_reply_atom, const std::string& bytes) { quorum_logic{self}.on_replies(bytes); },
      [=](caf::strong_actor_ptr& ptr) { quorum_logic{self}.found(ptr); },
      [=](quorum_status_atom) -> std::string {
        auto* c = self->state.ctx;
        return c->status_json ? c->status_json() : std::string{"{}"};
      },
  };
}

}  // namespace

caf::actor spawn_quorum_actor(caf::actor_system& sys, detail::quorum_context& ctx) {
  // Not detached: CAF 0.17 can hang in ~actor_system() waiting for detached actors' threads
  // (CAF issue #1196; seen in test/cluster). The actor never blocks, so the scheduler is fine.
  auto a = sys.spawn(quorum_impl, &ctx);
  sys.registry().put(quorum_registry_name(), a);
  return a;
}

void stop_quorum_actor(caf::actor_system& sys, const caf::actor& quorum) {
  if (!quorum) return;
  sys.registry().erase(quorum_registry_name());
  caf::scoped_actor self{sys};
  self->send_exit(quorum, caf::exit_reason::user_shutdown);
  self->wait_for(quorum);
}

warp::result<std::string> fetch_strong_status(caf::actor_system& sys, const std::string& host,
                                              std::uint16_t port,
                                              std::chrono::milliseconds timeout) {
  // Every step is bounded by `timeout` (middleman().remote_lookup() may wait minutes for a
  // reply that a restarted or paused peer never sends), and every step has a scoped_actor
  // of its own. With one actor for all three, CAF 0.17 leaks it: the connect request's
  // timeout stays armed after its answer, fires while a later step still waits (the lookup
  // of a paused node waits out its full `timeout`), and that later receive skips it into
  // the mailbox's cache. The message's sender is the actor itself and
  // blocking_actor::cleanup() does not drain the cache, so the actor keeps itself alive
  // (LeakSanitizer at warp-nemesis's exit; docs/security.md, "Sanitizers"). A fresh actor
  // per request has no later receive to skip into, and a timeout that fires after it is
  // gone is dropped by its closed mailbox.
  caf::node_id nid;
  {
    caf::scoped_actor self{sys};
    self->request(bus::node_middleman(sys), timeout, caf::connect_atom::value, host, port)
        .receive([&](const caf::node_id& n, caf::strong_actor_ptr&,
                     const std::set<std::string>&) { nid = n; },
                 [](caf::error&) {});
  }
  if (!nid)
    return error{errc::unreachable, "cannot connect to " + host + ":" + std::to_string(port)};
  caf::strong_actor_ptr ptr;
  if (nid == sys.node()) {  // our own node (a node asking itself)
    ptr = sys.registry().get(quorum_registry_name());
  } else {
    caf::scoped_actor self{sys};
    auto basp = sys.middleman().named_broker<caf::io::basp_broker>(caf::atom("BASP"));
    self->send(basp, caf::forward_atom::value, nid, caf::atom("ConfigServ"),
               caf::make_message(caf::get_atom::value, quorum_registry_name()));
    self->receive([&](caf::strong_actor_ptr& p) { ptr = std::move(p); },
                  caf::after(timeout) >> [] {});
  }
  if (!ptr) return error{errc::unsupported, "the node at " + host + " runs no quorum actor"};
  warp::result<std::string> out{errc::timeout, "no answer"};
  caf::scoped_actor self{sys};
  self->request(caf::actor_cast<caf::actor>(ptr), timeout, quorum_status_atom::value)
      .receive([&](std::string& json) { out = std::move(json); },
               [&](caf::error& err) {
                 out = error{errc::unreachable, sys.render(err)};
               });
  return out;
}

warp::result<std::string> fetch_strong_status_fresh(const std::string& host, std::uint16_t port,
                                                    std::chrono::milliseconds timeout) {
  caf::actor_system_config cfg;
  cfg.load<caf::io::middleman>();
  cfg.set("scheduler.max-threads", 1);
  cfg.set("logger.verbosity", caf::atom("quiet"));
  caf::actor_system sys{cfg};
  return fetch_strong_status(sys, host, port, timeout);
}

}  // namespace warp::actors
