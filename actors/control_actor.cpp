#include "actors/control_actor.hpp"

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>

#include <random>
#include <unordered_map>
#include <vector>

#include <caf/all.hpp>

#include "runtime/core/work_pool.hpp"

namespace warp::actors {

namespace {

/// Local only: a pool thread hands a finished request back to the actor.
using job_done_atom = caf::atom_constant<caf::atom("ctlJobDone")>;

/// State of the control actor. It holds only a pointer to the node (through the
/// control_backend it implements): the node owns the actor (publishes it, stops it via
/// stop_control_actor) and outlives it.
///
/// Node calls may block on storage I/O, so they run on the node's executor and come back as a
/// job_done message that delivers the request's response promise. (A detached actor would
/// avoid the pool, but CAF 0.17 can hang at shutdown waiting for detached actors.)
struct control_state {
  control_backend* node = nullptr;
  /// Requests answered, for logs/debugging; not exported.
  std::uint64_t requests = 0;
  /// Requests running on the pool, by a random token (a peer cannot guess one to forge a
  /// job_done reply).
  std::unordered_map<std::uint64_t, caf::response_promise> pending;
  std::mt19937_64 tokens{std::random_device{}()};
  /// The node's blocking executor; the node drains it after this actor is gone (a job
  /// finishing late sends its reply to a dead actor, which drops it).
  detail::work_pool* pool = nullptr;
  static inline const char* name = "warp.control";
};

using control_actor = caf::stateful_actor<control_state>;

/// Runs `job(reply, err)` on the pool; its reply (or error) answers the current request.
template <class Job>
caf::response_promise offload(control_actor* self, Job job) {
  auto rp = self->make_response_promise();
  std::uint64_t token = 0;
  do {
    token = self->state.tokens();
  } while (token == 0 || self->state.pending.count(token) != 0);
  self->state.pending.emplace(token, rp);
  auto me = caf::actor_cast<caf::actor>(self);
  bool queued = self->state.pool->post([me, token, job = std::move(job)]() mutable {
    caf::message reply;
    caf::error err;
    job(reply, err);
    caf::anon_send(me, job_done_atom::value, token, std::move(reply), std::move(err));
  });
  if (!queued) {
    self->state.pending.erase(token);
    rp.deliver(to_caf_error(warp::error{errc::shutting_down, "node is stopping"}));
  }
  return rp;
}

caf::error make_caf_error(errc code, std::string message) {
  return to_caf_error(warp::error{code, std::move(message)});
}

// The node enforces the limits too; checking here first rejects an oversized request with
// the same errc (the same check: limits::check_key/check_value) before it costs an executor
// job. An empty key is refused by the control protocol only (RESP allows it, like Redis).
caf::error check_key(const control_backend& n, const std::string& key) {
  if (key.empty()) return make_caf_error(errc::invalid_argument, "empty key");
  return to_caf_error(n.limits().check_key(key).err());
}

caf::error check_value(const control_backend& n, const std::string& value) {
  return to_caf_error(n.limits().check_value(value).err());
}

caf::error check_keys(const control_backend& n, const std::vector<std::string>& keys) {
  if (keys.empty() || keys.size() > max_batch_keys)
    return make_caf_error(errc::invalid_argument,
                          "give 1.." + std::to_string(max_batch_keys) + " keys");
  for (const auto& k : keys)
    if (auto err = check_key(n, k)) return err;
  return {};
}

/// A backend call's outcome as the reply (its value) or the error.
template <class T>
void answer(result<T> r, caf::message& reply, caf::error& err) {
  if (r)
    reply = caf::make_message(std::move(*r));
  else
    err = to_caf_error(r.err());
}

caf::behavior control_impl(control_actor* self, control_backend* n, detail::work_pool* pool) {
  self->state.node = n;
  self->state.pool = pool;
  // Unknown requests (a newer client, a stray message) get a typed error back instead of
  // CAF's default print-and-drop.
  self->set_default_handler([](caf::scheduled_actor*,
                               caf::message_view& msg) -> caf::result<caf::message> {
    return make_caf_error(errc::unsupported, "unknown control request " + to_string(msg.content()) +
                                                 " (protocol version " +
                                                 std::to_string(control_protocol_version) + ")");
  });
  return {
      [=](caf::ping_atom)
          -> caf::result<caf::pong_atom, std::string, std::uint32_t, std::uint16_t> {
        ++self->state.requests;
        auto& node = *self->state.node;
        return {caf::pong_atom::value, node.name(), node.id(),
                control_protocol_version};
      },
      [=](caf::get_atom, const std::string& key) -> caf::result<std::string> {
        ++self->state.requests;
        auto* node = self->state.node;
        if (auto err = check_key(*node, key)) return err;
        // An L1 hit needs no I/O: answer it right here.
        if (auto hit = node->get_if_present(key)) return std::string{view(*hit)};
        return offload(self, [node, key](caf::message& reply, caf::error& err) {
          auto value = node->get(key);
          if (value)
            reply = caf::make_message(std::string{view(*value)});
          else
            err = to_caf_error(value.err());
        });
      },
      [=](caf::put_atom, const std::string& key, const std::string& value,
          std::int64_t ttl_ms) -> caf::result<caf::ok_atom> {
        ++self->state.requests;
        auto& node = *self->state.node;
        if (auto err = check_key(node, key)) return err;
        if (auto err = check_value(node, value)) return err;
        if (ttl_ms < -1)
          return make_caf_error(errc::invalid_argument,
                                "ttl_ms must be -1 (key policy), 0 (none) or positive");
        std::optional<std::chrono::milliseconds> ttl;
        if (ttl_ms >= 0) ttl = std::chrono::milliseconds{ttl_ms};
        return offload(self, [n = &node, key, value, ttl](caf::message& reply, caf::error& err) {
          if (auto st = n->set(key, value, ttl); !st)
            err = to_caf_error(st.err());
          else
            reply = caf::make_message(caf::ok_atom::value);
        });
      },
      [=](caf::delete_atom, const std::string& key) -> caf::result<caf::ok_atom> {
        ++self->state.requests;
        auto& node = *self->state.node;
        if (auto err = check_key(node, key)) return err;
        return offload(self, [n = &node, key](caf::message& reply, caf::error& err) {
          if (auto st = n->remove(key); !st)
            err = to_caf_error(st.err());
          else
            reply = caf::make_message(caf::ok_atom::value);
        });
      },
      [=](stats_atom) -> caf::result<std::string> {
        ++self->state.requests;
        return offload(self, [n = self->state.node](caf::message& reply, caf::error&) {
          reply = caf::make_message(n->stats_json());
        });
      },
      [=](validate_atom, const std::string& glob) -> caf::result<std::string> {
        ++self->state.requests;
        auto& node = *self->state.node;
        // A glob is matched against keys: the key bound bounds it too.
        if (auto err = to_caf_error(node.limits().check_key(glob).err())) return err;
        return offload(self, [n = &node, glob](caf::message& reply, caf::error& err) {
          answer(n->validate_json(glob), reply, err);
        });
      },
      [=](patterns_atom) -> caf::result<std::string> {
        ++self->state.requests;
        return offload(self, [n = self->state.node](caf::message& reply, caf::error& err) {
          answer(n->patterns_json(), reply, err);
        });
      },
      [=](patterns_atom, caf::put_atom, const std::string& spec) -> caf::result<std::string> {
        ++self->state.requests;
        // The registry bounds a glob to 1024 bytes; a spec is that plus a few options.
        if (spec.empty() || spec.size() > 4096)
          return make_caf_error(errc::invalid_argument, "pattern spec empty or over 4096 bytes");
        return offload(self, [n = self->state.node, spec](caf::message& reply, caf::error& err) {
          answer(n->set_pattern(spec), reply, err);
        });
      },
      [=](patterns_atom, caf::delete_atom, const std::string& glob) -> caf::result<std::string> {
        ++self->state.requests;
        if (glob.empty() || glob.size() > 4096)
          return make_caf_error(errc::invalid_argument, "glob empty or over 4096 bytes");
        return offload(self, [n = self->state.node, glob](caf::message& reply, caf::error& err) {
          answer(n->remove_pattern(glob), reply, err);
        });
      },
      [=](ttl_atom, const std::string& key) -> caf::result<std::int64_t> {
        ++self->state.requests;
        auto* node = self->state.node;
        if (auto err = check_key(*node, key)) return err;
        return offload(self, [node, key](caf::message& reply, caf::error& err) {
          answer(node->expiry(key), reply, err);
        });
      },
      [=](exists_atom, const std::vector<std::string>& keys) -> caf::result<std::string> {
        ++self->state.requests;
        auto* node = self->state.node;
        if (auto err = check_keys(*node, keys)) return err;
        return offload(self, [node, keys](caf::message& reply, caf::error& err) {
          std::string found;
          for (const auto& k : keys) {
            auto r = node->contains(k);
            if (!r) {
              err = to_caf_error(r.err());
              return;
            }
            found.push_back(*r ? '1' : '0');
          }
          reply = caf::make_message(std::move(found));
        });
      },
      [=](incr_atom, const std::string& key, std::int64_t by) -> caf::result<std::int64_t> {
        ++self->state.requests;
        auto* node = self->state.node;
        if (auto err = check_key(*node, key)) return err;
        return offload(self, [node, key, by](caf::message& reply, caf::error& err) {
          answer(node->incr(key, by), reply, err);
        });
      },
      [=](mget_atom, const std::vector<std::string>& keys)
          -> caf::result<std::vector<std::string>, std::string> {
        ++self->state.requests;
        auto* node = self->state.node;
        if (auto err = check_keys(*node, keys)) return err;
        return offload(self, [node, keys](caf::message& reply, caf::error& err) {
          std::vector<std::string> values;
          std::string found;
          for (const auto& k : keys) {
            auto v = node->get(k);
            if (!v && v.code() != errc::not_found) {
              err = to_caf_error(v.err());
              return;
            }
            values.emplace_back(v ? std::string{view(*v)} : std::string{});
            found.push_back(v ? '1' : '0');
          }
          reply = caf::make_message(std::move(values), std::move(found));
        });
      },
      [=](scan_atom, const std::string& after, std::uint64_t count,
          const std::string& glob) -> caf::result<std::vector<std::string>, std::string, bool> {
        ++self->state.requests;
        auto* node = self->state.node;
        if (count == 0 || count > max_scan_count)
          return make_caf_error(errc::invalid_argument,
                                "scan count must be 1.." + std::to_string(max_scan_count));
        if (after.size() > node->limits().max_key_size || glob.size() > 4096)
          return make_caf_error(errc::invalid_argument, "scan cursor or pattern too long");
        return offload(self, [node, after, count, glob](caf::message& reply, caf::error& err) {
          auto page = node->scan(after, static_cast<std::size_t>(count), glob);
          if (!page) {
            err = to_caf_error(page.err());
            return;
          }
          reply = caf::make_message(std::move(page->keys), std::move(page->next_after), page->done);
        });
      },
      [=](health_atom) -> caf::result<std::string> {
        ++self->state.requests;
        return offload(self, [n = self->state.node](caf::message& reply, caf::error& err) {
          answer(n->health_json(), reply, err);
        });
      },
      [=](control_strong_atom) -> caf::result<std::string> {
        ++self->state.requests;
        return offload(self, [n = self->state.node](caf::message& reply, caf::error& err) {
          answer(n->strong_json(), reply, err);
        });
      },
      [=](control_members_atom, std::string& op, std::string& target) -> caf::result<std::string> {
        ++self->state.requests;
        if ((op != "list" && op != "add" && op != "remove") || target.size() > 1024)
          return make_caf_error(errc::invalid_argument,
                                "members: op must be list, add or remove; target at most 1 KiB");
        return offload(self, [n = self->state.node, op = std::move(op), target = std::move(target)](
                                 caf::message& reply, caf::error& err) {
          answer(n->strong_members(op, target), reply, err);
        });
      },
      [=](coord_atom, std::string& verb,
          std::vector<std::string>& args) -> caf::result<std::string> {
        ++self->state.requests;
        if (verb.size() > 32 || args.size() > max_coord_args)
          return make_caf_error(errc::invalid_argument, "coordination: bad request shape");
        for (const auto& a : args)
          if (auto err = check_value(*self->state.node, a)) return err;
        return offload(self, [n = self->state.node, verb = std::move(verb),
                              args = std::move(args)](caf::message& reply, caf::error& err) {
          answer(n->coordination(verb, args), reply, err);
        });
      },
      [=](control_hotkeys_atom, std::uint32_t limit) -> caf::result<std::string> {
        ++self->state.requests;
        return offload(self, [n = self->state.node, limit](caf::message& reply, caf::error&) {
          reply = caf::make_message(n->hot_keys_json(limit));
        });
      },
      [=](job_done_atom, std::uint64_t token, caf::message& reply, caf::error& err) {
        auto it = self->state.pending.find(token);
        if (it == self->state.pending.end()) return;
        auto rp = std::move(it->second);
        self->state.pending.erase(it);
        if (err)
          rp.deliver(std::move(err));
        else
          rp.deliver(std::move(reply));
      },
  };
}

}  // namespace

caf::error to_caf_error(const warp::error& err) {
  if (err.ok()) return {};
  return caf::error{static_cast<std::uint8_t>(err.code()), control_error_category(),
                    caf::make_message(err.message())};
}

warp::error from_caf_error(const caf::error& err) {
  if (!err) return {};
  if (err.category() == control_error_category()) {
    std::string message;
    const auto& ctx = err.context();
    if (ctx.match_elements<std::string>()) message = ctx.get_as<std::string>(0);
    auto code = err.code();
    if (code > static_cast<std::uint8_t>(errc::internal))
      code = static_cast<std::uint8_t>(errc::internal);
    return warp::error{static_cast<errc>(code), std::move(message)};
  }
  auto text = caf::to_string(err);
  if (err.category() == caf::atom("system")) {
    switch (static_cast<caf::sec>(err.code())) {
      case caf::sec::request_timeout:
        // The request may have reached the node: a write's outcome is unknown, but the
        // common case for warpctl is "node did not answer", reported as timeout.
        return warp::error{errc::timeout, std::move(text)};
      case caf::sec::cannot_connect_to_node:
      case caf::sec::no_route_to_receiving_node:
      case caf::sec::remote_linking_failed:
      case caf::sec::request_receiver_down:
      case caf::sec::no_actor_published_at_port:
      case caf::sec::disconnect_during_handshake:
      case caf::sec::network_syscall_failed:
      case caf::sec::socket_disconnected:
      case caf::sec::connection_timeout:
      case caf::sec::remote_lookup_failed:
      case caf::sec::incompatible_versions:
      case caf::sec::incompatible_application_ids:
        return warp::error{errc::unreachable, std::move(text)};
      case caf::sec::unexpected_message:
      case caf::sec::unexpected_response:
        return warp::error{errc::unsupported, std::move(text)};
      default:
        break;
    }
  }
  return warp::error{errc::internal, std::move(text)};
}

std::string render_control_error(std::uint8_t code, caf::atom_value category,
                                 const caf::message& context) {
  std::string out = caf::to_string(category);
  out += ": ";
  out += warp::to_string(static_cast<errc>(code));
  if (context.match_elements<std::string>()) {
    const auto& msg = context.get_as<std::string>(0);
    if (!msg.empty()) {
      out += " (";
      out += msg;
      out += ')';
    }
  }
  return out;
}

void register_control_protocol(caf::actor_system_config& cfg) {
  cfg.add_error_category(control_error_category(), render_control_error);
}

caf::actor spawn_control_actor(caf::actor_system& sys, control_backend& n, detail::work_pool& executor) {
  return sys.spawn(control_impl, &n, &executor);
}

void stop_control_actor(caf::actor_system& sys, const caf::actor& control) {
  if (!control) return;
  caf::scoped_actor self{sys};
  self->send_exit(control, caf::exit_reason::user_shutdown);
  // wait_for returns once the actor is down; a request inside a node call finishes first.
  self->wait_for(control);
}

}  // namespace warp::actors
