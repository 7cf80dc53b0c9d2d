// Warp inside a host's CAF actor: the actor asks for a key with get_async and gets the
// outcome back as a message, so no scheduler thread ever waits on storage or a peer. The
// node runs in the host's actor_system; its blocking work runs on the node's executor.
// Build it in the tree (target example_async_in_actor); it exits non-zero on a failure.
#include <cstdio>
#include <string>
#include <unordered_map>

#include <caf/all.hpp>

#include <warp/node.hpp>

namespace {

using lookup_atom = caf::atom_constant<caf::atom("lookup")>;
using got_atom = caf::atom_constant<caf::atom("got")>;

struct lookup_state {
  /// Requests waiting for their get_async, by a local id.
  std::unordered_map<std::uint64_t, caf::response_promise> pending;
  std::uint64_t next_id = 1;
  static inline const char* name = "example.lookup";
};

/// Answers lookup(key) with the value, or "<not_found>" / "<error code>".
caf::behavior lookup_actor(caf::stateful_actor<lookup_state>* self, warp::node* node) {
  return {
      [=](lookup_atom, const std::string& key) -> caf::result<std::string> {
        auto rp = self->make_response_promise();
        auto id = self->state.next_id++;
        self->state.pending.emplace(id, rp);
        auto me = caf::actor_cast<caf::actor>(self);
        // The callback runs on Warp's executor (or right here on an L1 hit): it only
        // sends a message, the actor picks the outcome up in its own turn.
        node->get_async(key, [me, id](warp::result<warp::buffer> r) {
          std::string text =
              r ? std::string{warp::view(*r)} : "<" + std::string{warp::to_string(r.code())} + ">";
          caf::anon_send(me, got_atom::value, id, std::move(text));
        });
        return rp;
      },
      [=](got_atom, std::uint64_t id, std::string& text) {
        auto it = self->state.pending.find(id);
        if (it == self->state.pending.end()) return;
        it->second.deliver(std::move(text));
        self->state.pending.erase(it);
      },
  };
}

}  // namespace

int main() {
  caf::actor_system_config cfg;
  cfg.set("scheduler.max-threads", 2);
  caf::actor_system sys{cfg};

  warp::node_config config;  // no listener by default: nothing leaves the process here
  config.name = "async-example";
  config.storage = "memory";
  config.log_level = "warn";
  if (auto valid = config.validate(); !valid) {
    std::fprintf(stderr, "bad config: %s\n", valid.err().to_string().c_str());
    return 1;
  }
  auto node = warp::node::start(sys, config);
  if (!node) {
    std::fprintf(stderr, "cannot start: %s\n", node.err().to_string().c_str());
    return 1;
  }
  auto& n = **node;

  int failures = 0;
  auto actor = sys.spawn(lookup_actor, &n);
  caf::scoped_actor self{sys};
  auto lookup = [&](const std::string& key, const std::string& expect) {
    self->request(actor, std::chrono::seconds(10), lookup_atom::value, key)
        .receive(
            [&](const std::string& text) {
              std::printf("%s -> %s\n", key.c_str(), text.c_str());
              failures += text != expect;
            },
            [&](caf::error& err) {
              std::fprintf(stderr, "%s: %s\n", key.c_str(), sys.render(err).c_str());
              ++failures;
            });
  };
  lookup("user:1", "<not_found>");  // a miss: read through storage on the executor
  // The future form, for a thread that may wait (never a scheduler thread).
  if (auto st = n.set_async("user:1", "Ada").get(); !st) {
    std::fprintf(stderr, "set_async: %s\n", st.err().to_string().c_str());
    ++failures;
  }
  lookup("user:1", "Ada");  // an L1 hit: answered without the executor

  self->send_exit(actor, caf::exit_reason::user_shutdown);
  self->wait_for(actor);
  n.stop();
  return failures == 0 ? 0 : 1;
}
