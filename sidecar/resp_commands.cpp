// The sidecar's commands: Redis's string commands, connection commands, pub/sub over the
// node's change stream, and client-side caching. Reply shapes and error texts follow
// Redis 7.0 where clients depend on them.
//
// Mode mapping: every key goes through warp::node, so its registered pattern decides the
// consistency mode. Plain writes are node.set/set_at/remove; read-modify-write commands
// (INCR*, DECR*, APPEND, SET NX/XX/GET/KEEPTTL, GETDEL, GETEX, EXPIRE*, PERSIST, DEL) are
// node.update(), atomic per key in the key's mode.
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <limits>

#include "sidecar/resp_server_impl.hpp"
#include "sidecar/typed_commands.hpp"
#include "warp/l1.hpp"

namespace warp::sidecar::detail {

namespace {

constexpr std::string_view redis_version = "7.0.0";


std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& ch : out)
    if (ch >= 'A' && ch <= 'Z') ch = static_cast<char>(ch - 'A' + 'a');
  return out;
}

void reply_error(resp_writer& w, const error& e) {
  switch (e.code()) {
    case errc::value_too_large:
      w.error("ERR string exceeds maximum allowed size");
      return;
    case errc::key_too_large:
      w.error("ERR key exceeds maximum allowed size");
      return;
    case errc::storage_error:
      // maxmemory reached under noeviction: Redis's own words, clients match on "OOM".
      if (e.message().starts_with("OOM ")) {
        w.error(e.message());
        return;
      }
      break;
    default:
      break;
  }
  std::string msg = "ERR warp ";
  // A client sees a short code and message for storage failures, never the adapter's
  // full text (which may name a path or a server); the node's log has the detail.
  if (e.code() == errc::storage_unavailable) {
    msg += e.message().starts_with("circuit open") ? "storage_unavailable: circuit open"
                                                   : "storage_unavailable: storage unreachable";
  } else if (e.code() == errc::storage_error) {
    msg += "storage_error: storage failed the request";
  } else {
    msg += e.to_string();
  }
  w.error(msg);
}

const char* not_int = "ERR value is not an integer or out of range";
const char* syntax = "ERR syntax error";

bool arg_int(context& ctx, std::size_t i, std::int64_t& out) {
  if (!parse_int64(ctx.args[i], out)) {
    ctx.w.error(not_int);
    return false;
  }
  return true;
}

/// Writes a stored string value; a list, set... is WRONGTYPE (or nil for MGET). Only a value
/// starting with 0xFF needs a look at its header (typed_value.hpp).
void reply_stored(resp_writer& w, std::string_view bytes, bool nil_if_other_type) {
  if (!bytes.empty() && bytes[0] == typed::magic[0]) [[unlikely]] {
    if (typed::type_of(bytes) != value_type::string) {
      if (nil_if_other_type) return w.null();
      return w.error(wrongtype);
    }
    return w.bulk(typed::string_payload(bytes));
  }
  w.bulk(bytes);
}

/// The client-visible string of a stored value, or nullopt for another type.
std::optional<std::string> stored_string(const buffer& b) {
  if (typed::type_of(*b) != value_type::string) return std::nullopt;
  return std::string(typed::string_payload(*b));
}

/// Writes the value of `key` as a bulk or null. The hit path is L1::read writing straight
/// into the output buffer: no copy, no reference count, no actor.
void reply_value(context& ctx, std::string_view key, bool nil_if_other_type = false) {
  auto& w = ctx.w;
  bool hit = ctx.n.read_if_present(
      key, [&](std::string_view bytes) { reply_stored(w, bytes, nil_if_other_type); });
  if (hit) {
    ctx.hit();
    return;
  }
  // Miss: read-through (storage, or the key range's owner) on a worker thread, never on
  // the loop: the loop thread only asks for it.
  if (!ctx.j) {
    ctx.defer = true;
    return;
  }
  auto r = ctx.n.get(key);
  if (r) {
    ctx.hit();
    reply_stored(w, view(*r), nil_if_other_type);
  } else if (r.code() == errc::not_found) {
    ctx.miss();
    w.null();
  } else {
    reply_error(w, r.err());
  }
}

/// Absolute expiry from a relative/absolute amount in s or ms; false (with Redis's error)
/// when it is not positive or overflows.
bool expiry_from(resp_writer& w, std::string_view amount, bool millis, bool absolute,
                 std::string_view cmd, std::int64_t& out) {
  std::int64_t v = 0;
  if (!parse_int64(amount, v)) {
    w.error(not_int);
    return false;
  }
  auto invalid = [&] {
    w.error("ERR invalid expire time in '" + std::string(cmd) + "' command");
    return false;
  };
  if (v <= 0) return invalid();
  if (!millis) {
    if (v > std::numeric_limits<std::int64_t>::max() / 1000) return invalid();
    v *= 1000;
  }
  if (!absolute) {
    std::int64_t now = now_ms();
    if (v > std::numeric_limits<std::int64_t>::max() - now) return invalid();
    v += now;
  }
  out = v;
  return true;
}

// -- connection ----------------------------------------------------------------------------

void cmd_ping(context& ctx) {
  if (ctx.args.size() > 2) {
    ctx.w.error("ERR wrong number of arguments for 'ping' command");
    return;
  }
  if (ctx.c.proto == 2 && ctx.c.subscriptions() > 0) {
    ctx.w.array(2);
    ctx.w.bulk("pong");
    ctx.w.bulk(ctx.args.size() == 2 ? ctx.args[1] : std::string_view{});
    return;
  }
  if (ctx.args.size() == 2)
    ctx.w.bulk(ctx.args[1]);
  else
    ctx.w.simple("PONG");
}

void cmd_echo(context& ctx) {
  ctx.w.bulk(ctx.args[1]);
}

void cmd_quit(context& ctx) {
  ctx.w.simple("OK");
  ctx.c.close_after_write = true;
}

void cmd_select(context& ctx) {
  std::int64_t db = 0;
  if (!arg_int(ctx, 1, db)) return;
  if (db != 0) {
    ctx.w.error("ERR DB index is out of range");
    return;
  }
  ctx.w.simple("OK");
}

bool constant_time_equal(std::string_view a, std::string_view b) {
  // Compare every byte whatever the first mismatch, so timing does not leak the prefix.
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  std::size_t n = std::max(a.size(), b.size());
  for (std::size_t i = 0; i < n; ++i) {
    unsigned char x = i < a.size() ? static_cast<unsigned char>(a[i]) : 0;
    unsigned char y = i < b.size() ? static_cast<unsigned char>(b[i]) : 0;
    diff |= static_cast<unsigned char>(x ^ y);
  }
  return diff == 0;
}

/// Checks credentials; on success marks the client authenticated. Writes nothing.
bool check_auth(context& ctx, std::string_view user, std::string_view pass) {
  const auto& pw = ctx.srv.options().password;
  if (iequals(user, "default") && (pw.empty() || constant_time_equal(pass, pw))) {
    ctx.c.authenticated = true;
    return true;
  }
  ctx.srv.auth_failed(ctx.c);  // counted, then the client is slowed or closed
  return false;
}

void cmd_auth(context& ctx) {
  if (ctx.args.size() > 3) {
    ctx.w.error(syntax);
    return;
  }
  if (ctx.args.size() == 2 && ctx.srv.options().password.empty()) {
    ctx.w.error(
        "ERR AUTH <password> called without any password configured for the default user. "
        "Are you sure your configuration is correct?");
    return;
  }
  std::string_view user = ctx.args.size() == 3 ? ctx.args[1] : "default";
  if (check_auth(ctx, user, ctx.args.back()))
    ctx.w.simple("OK");
  else
    ctx.w.error("WRONGPASS invalid username-password pair or user is disabled.");
}

bool valid_client_name(std::string_view name) {
  for (char ch : name)
    if (ch < '!' || ch > '~') return false;
  return true;
}

void cmd_hello(context& ctx) {
  auto& c = ctx.c;
  int proto = c.proto;
  if (ctx.args.size() >= 2) {
    std::int64_t v = 0;
    if (!parse_int64(ctx.args[1], v)) {
      ctx.w.error("ERR Protocol version is not an integer or out of range");
      return;
    }
    if (v < 2 || v > 3) {
      ctx.w.error("NOPROTO unsupported protocol version");
      return;
    }
    proto = static_cast<int>(v);
  }
  std::string_view user, pass, name;
  bool has_auth = false, has_name = false;
  for (std::size_t i = 2; i < ctx.args.size(); ++i) {
    std::size_t more = ctx.args.size() - i - 1;
    if (iequals(ctx.args[i], "auth") && more >= 2) {
      has_auth = true;
      user = ctx.args[i + 1];
      pass = ctx.args[i + 2];
      i += 2;
    } else if (iequals(ctx.args[i], "setname") && more >= 1) {
      has_name = true;
      name = ctx.args[i + 1];
      i += 1;
    } else {
      ctx.w.error("ERR Syntax error in HELLO option '" + std::string(ctx.args[i]) + "'");
      return;
    }
  }
  if (has_auth && !check_auth(ctx, user, pass)) {
    ctx.w.error("WRONGPASS invalid username-password pair or user is disabled.");
    return;
  }
  if (!c.authenticated) {
    ctx.w.error(
        "NOAUTH HELLO must be called with the client already authenticated, otherwise the "
        "HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and "
        "select the RESP protocol version at the same time");
    return;
  }
  if (has_name) {
    if (!valid_client_name(name)) {
      ctx.w.error("ERR Client names cannot contain spaces, newlines or special characters.");
      return;
    }
    c.name = name;
  }
  c.proto = proto;
  ctx.w.set_protocol(proto);
  auto& w = ctx.w;
  w.map(7);
  w.bulk("server");
  w.bulk("redis");
  w.bulk("version");
  w.bulk(redis_version);
  w.bulk("proto");
  w.integer(proto);
  w.bulk("id");
  w.integer(static_cast<std::int64_t>(c.id));
  w.bulk("mode");
  w.bulk("standalone");
  w.bulk("role");
  w.bulk("master");
  w.bulk("modules");
  w.array(0);
}

// -- CLIENT --------------------------------------------------------------------------------

std::string client_line(server& srv, const client& c) {
  auto now = now_ms();
  std::string s;
  s += "id=" + std::to_string(c.id);
  s += " addr=" + c.addr;
  s += " laddr=" + c.laddr;
  s += " fd=" + std::to_string(c.fd);
  s += " name=" + c.name;
  s += " age=" + std::to_string((now - c.created_ms) / 1000);
  s += " idle=" + std::to_string((now - c.last_ms) / 1000);
  std::string flags;
  if (c.subscriptions() > 0) flags += 'P';
  if (c.tracking) flags += 't';
  if (c.tracking && c.redirect && !srv.find_client(c.redirect)) flags += 'R';
  if (flags.empty()) flags = "N";
  s += " flags=" + flags;
  s += " db=0";
  s += " sub=" + std::to_string(c.channels.size());
  s += " psub=" + std::to_string(c.patterns.size());
  s += " ssub=0 multi=-1";
  s += " qbuf=" + std::to_string(c.in.size());
  s += " obl=" + std::to_string(c.out.size() - c.out_pos);
  s += " omem=" + std::to_string(c.out.capacity());
  s += " cmd=" + (c.last_command ? std::string(c.last_command->name) : std::string("NULL"));
  s += " user=default";
  s += " redir=" + std::to_string(c.tracking ? static_cast<std::int64_t>(c.redirect) : -1);
  s += " resp=" + std::to_string(c.proto);
  if (!c.lib_name.empty()) s += " lib-name=" + c.lib_name;
  if (!c.lib_ver.empty()) s += " lib-ver=" + c.lib_ver;
  s += "\n";
  return s;
}

void client_tracking(context& ctx) {
  auto& c = ctx.c;
  auto& w = ctx.w;
  bool on;
  if (iequals(ctx.args[2], "on"))
    on = true;
  else if (iequals(ctx.args[2], "off"))
    on = false;
  else {
    w.error(syntax);
    return;
  }
  bool bcast = false, optin = false, optout = false, noloop = false;
  std::uint64_t redirect = 0;
  std::vector<std::string> prefixes;
  for (std::size_t i = 3; i < ctx.args.size(); ++i) {
    auto opt = ctx.args[i];
    bool more = i + 1 < ctx.args.size();
    if (iequals(opt, "redirect") && more) {
      std::int64_t id = 0;
      if (!parse_int64(ctx.args[++i], id)) {
        w.error(not_int);
        return;
      }
      if (id != static_cast<std::int64_t>(c.id) &&
          !ctx.srv.find_client(static_cast<std::uint64_t>(id))) {
        w.error("ERR The client ID you want redirect to does not exist");
        return;
      }
      redirect = static_cast<std::uint64_t>(id);
    } else if (iequals(opt, "bcast")) {
      bcast = true;
    } else if (iequals(opt, "optin")) {
      optin = true;
    } else if (iequals(opt, "optout")) {
      optout = true;
    } else if (iequals(opt, "noloop")) {
      noloop = true;
    } else if (iequals(opt, "prefix") && more) {
      prefixes.emplace_back(ctx.args[++i]);
    } else {
      w.error(syntax);
      return;
    }
  }
  if (on) {
    if (!bcast && !prefixes.empty()) {
      w.error("ERR PREFIX option requires BCAST mode to be enabled");
      return;
    }
    if (c.tracking && c.bcast != bcast) {
      w.error(
          "ERR You can't switch BCAST mode on/off before disabling tracking for this client, "
          "and then re-enabling it with a different mode.");
      return;
    }
    if (optin && optout) {
      w.error("ERR You can't specify both OPTIN mode and OPTOUT mode");
      return;
    }
    if ((optin || optout) && bcast) {
      w.error("ERR OPTIN and OPTOUT are not compatible with BCAST");
      return;
    }
    if ((optin && c.tracking && c.optout) || (optout && c.tracking && c.optin)) {
      w.error(
          "ERR You can't switch OPTIN/OPTOUT mode before disabling tracking for this client, "
          "and then re-enabling it with a different mode.");
      return;
    }
    c.tracking = true;
    c.bcast = bcast;
    c.optin = optin;
    c.optout = optout;
    c.noloop = noloop;
    c.redirect = redirect;
    for (auto& p : prefixes)
      if (std::find(c.prefixes.begin(), c.prefixes.end(), p) == c.prefixes.end())
        c.prefixes.push_back(std::move(p));
  } else {
    c.tracking = c.bcast = c.optin = c.optout = c.noloop = false;
    c.redirect = 0;
    c.prefixes.clear();
  }
  ctx.srv.tracking_changed(c);
  w.simple("OK");
}

void cmd_client(context& ctx) {
  auto& c = ctx.c;
  auto& w = ctx.w;
  auto sub = ctx.args[1];
  auto argc = ctx.args.size();
  auto arity_error = [&] {
    w.error("ERR wrong number of arguments for 'client|" + lower(sub) + "' command");
  };
  if (iequals(sub, "id")) {
    if (argc != 2) return arity_error();
    w.integer(static_cast<std::int64_t>(c.id));
  } else if (iequals(sub, "setname")) {
    if (argc != 3) return arity_error();
    if (!valid_client_name(ctx.args[2])) {
      w.error("ERR Client names cannot contain spaces, newlines or special characters.");
      return;
    }
    c.name = ctx.args[2];
    w.simple("OK");
  } else if (iequals(sub, "getname")) {
    if (argc != 2) return arity_error();
    if (c.name.empty())
      w.null();
    else
      w.bulk(c.name);
  } else if (iequals(sub, "info")) {
    if (argc != 2) return arity_error();
    w.verbatim(client_line(ctx.srv, c));
  } else if (iequals(sub, "list")) {
    std::string all;
    for (auto& [id, cl] : ctx.srv.clients())
      if (!cl->closed) all += client_line(ctx.srv, *cl);
    w.verbatim(all);
  } else if (iequals(sub, "setinfo")) {
    if (argc != 4) return arity_error();
    if (iequals(ctx.args[2], "lib-name"))
      c.lib_name = ctx.args[3];
    else if (iequals(ctx.args[2], "lib-ver"))
      c.lib_ver = ctx.args[3];
    else {
      w.error("ERR Unrecognized option '" + std::string(ctx.args[2]) + "'");
      return;
    }
    w.simple("OK");
  } else if (iequals(sub, "tracking")) {
    if (argc < 3) return arity_error();
    client_tracking(ctx);
  } else if (iequals(sub, "caching")) {
    if (argc != 3) return arity_error();
    if (!c.tracking || !(c.optin || c.optout)) {
      w.error(
          "ERR CLIENT CACHING can be called only when the client is in tracking mode with "
          "OPTIN or OPTOUT mode enabled");
      return;
    }
    if (iequals(ctx.args[2], "yes")) {
      if (!c.optin) {
        w.error("ERR CLIENT CACHING YES is only valid when tracking is enabled in OPTIN mode.");
        return;
      }
      c.caching = 1;
    } else if (iequals(ctx.args[2], "no")) {
      if (!c.optout) {
        w.error("ERR CLIENT CACHING NO is only valid when tracking is enabled in OPTOUT mode.");
        return;
      }
      c.caching = 0;
    } else {
      w.error(syntax);
      return;
    }
    c.caching_left = 2;  // this command and the next one
    w.simple("OK");
  } else if (iequals(sub, "getredir")) {
    if (argc != 2) return arity_error();
    w.integer(c.tracking ? static_cast<std::int64_t>(c.redirect) : -1);
  } else if (iequals(sub, "trackinginfo")) {
    if (argc != 2) return arity_error();
    w.map(3);
    w.bulk("flags");
    std::vector<std::string_view> flags;
    if (!c.tracking)
      flags.push_back("off");
    else {
      flags.push_back("on");
      if (c.bcast) flags.push_back("bcast");
      if (c.optin) flags.push_back("optin");
      if (c.optout) flags.push_back("optout");
      if (c.noloop) flags.push_back("noloop");
      if (c.caching == 1) flags.push_back("caching-yes");
      if (c.caching == 0) flags.push_back("caching-no");
      if (c.redirect && !ctx.srv.find_client(c.redirect)) flags.push_back("broken_redirect");
    }
    w.set(flags.size());
    for (auto f : flags) w.bulk(f);
    w.bulk("redirect");
    w.integer(c.tracking ? static_cast<std::int64_t>(c.redirect) : -1);
    w.bulk("prefixes");
    w.array(c.prefixes.size());
    for (auto& p : c.prefixes) w.bulk(p);
  } else if (iequals(sub, "no-evict") || iequals(sub, "no-touch")) {
    if (argc != 3) return arity_error();
    w.simple("OK");
  } else if (iequals(sub, "help")) {
    static constexpr std::string_view lines[] = {
        "CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "ID",
        "SETNAME <name>",
        "GETNAME",
        "INFO",
        "LIST",
        "SETINFO <LIB-NAME|LIB-VER> <value>",
        "TRACKING (ON|OFF) [REDIRECT <id>] [BCAST] [PREFIX <prefix> [...]] [OPTIN] [OPTOUT] "
        "[NOLOOP]",
        "CACHING (YES|NO)",
        "GETREDIR",
        "TRACKINGINFO"};
    w.array(std::size(lines));
    for (auto l : lines) w.simple(l);
  } else {
    w.error("ERR unknown subcommand '" + std::string(sub.substr(0, 128)) + "'. Try CLIENT HELP.");
  }
}

// -- server --------------------------------------------------------------------------------

void cmd_command(context& ctx) {
  auto& w = ctx.w;
  auto info = [&](const command_def& d) {
    w.array(10);
    w.bulk(d.name);
    w.integer(d.arity);
    std::vector<std::string_view> flags;
    std::string_view f = d.flags;
    while (!f.empty()) {
      auto sp = f.find(' ');
      flags.push_back(f.substr(0, sp));
      if (sp == std::string_view::npos) break;
      f.remove_prefix(sp + 1);
    }
    w.set(flags.size());
    for (auto fl : flags) w.simple(fl);
    w.integer(d.first_key);
    w.integer(d.last_key);
    w.integer(d.step);
    w.set(0);
    w.set(0);
    w.array(0);
    w.array(0);
  };
  const auto& all = commands();
  if (ctx.args.size() == 1) {
    w.array(all.size());
    for (const auto& d : all) info(d);
    return;
  }
  auto sub = ctx.args[1];
  if (iequals(sub, "count")) {
    w.integer(static_cast<std::int64_t>(all.size()));
  } else if (iequals(sub, "list")) {
    w.array(all.size());
    for (const auto& d : all) w.bulk(d.name);
  } else if (iequals(sub, "info")) {
    if (ctx.args.size() == 2) {
      w.array(all.size());
      for (const auto& d : all) info(d);
      return;
    }
    w.array(ctx.args.size() - 2);
    for (std::size_t i = 2; i < ctx.args.size(); ++i) {
      if (auto* d = find_command(ctx.args[i]))
        info(*d);
      else
        w.null_array();
    }
  } else if (iequals(sub, "docs")) {
    std::vector<const command_def*> wanted;
    if (ctx.args.size() == 2)
      for (const auto& d : all) wanted.push_back(&d);
    else
      for (std::size_t i = 2; i < ctx.args.size(); ++i)
        if (auto* d = find_command(ctx.args[i])) wanted.push_back(d);
    w.map(wanted.size());
    for (auto* d : wanted) {
      w.bulk(d->name);
      w.map(3);
      w.bulk("summary");
      w.bulk(d->summary);
      w.bulk("since");
      w.bulk("1.0.0");
      w.bulk("group");
      w.bulk(d->group);
    }
  } else {
    w.error("ERR unknown subcommand '" + std::string(sub.substr(0, 128)) + "'. Try COMMAND HELP.");
  }
}

void cmd_info(context& ctx) {
  ctx.w.verbatim(ctx.srv.info_text(ctx.args.subspan(1)));
}

void cmd_config(context& ctx) {
  // Enough for redis-benchmark and tools that read a few settings at start.
  auto& w = ctx.w;
  if (iequals(ctx.args[1], "get") && ctx.args.size() >= 3) {
    const auto& o = ctx.srv.options();
    std::vector<std::pair<std::string, std::string>> known = {
        {"save", ""},
        {"appendonly", "no"},
        {"databases", "1"},
        {"maxclients", std::to_string(o.max_clients)},
        {"timeout", std::to_string(o.idle_timeout.count())},
        {"proto-max-bulk-len", std::to_string(o.max_bulk_length)},
        {"maxmemory", std::to_string(ctx.n.storage().memory().max_bytes)},
        {"maxmemory-policy", std::string(ctx.n.storage().memory().policy)},
        {"maxmemory-clients", std::to_string(o.max_client_memory)},
        {"port", std::to_string(ctx.srv.port())},
    };
    std::vector<std::pair<std::string, std::string>> out;
    for (std::size_t i = 2; i < ctx.args.size(); ++i) {
      auto pattern = lower(ctx.args[i]);
      for (auto& kv : known)
        if (glob_match(pattern, kv.first) && std::find(out.begin(), out.end(), kv) == out.end())
          out.push_back(kv);
    }
    w.map(out.size());
    for (auto& [k, v] : out) {
      w.bulk(k);
      w.bulk(v);
    }
  } else if (iequals(ctx.args[1], "resetstat")) {
    w.simple("OK");
  } else if (iequals(ctx.args[1], "set")) {
    w.error("ERR CONFIG SET is not supported by the Warp sidecar: configure warpd instead");
  } else {
    w.error("ERR unknown subcommand '" + std::string(ctx.args[1].substr(0, 128)) +
            "'. Try CONFIG HELP.");
  }
}

void cmd_time(context& ctx) {
  auto now = std::chrono::system_clock::now().time_since_epoch();
  auto us = std::chrono::duration_cast<std::chrono::microseconds>(now).count();
  ctx.w.array(2);
  ctx.w.bulk(std::to_string(us / 1'000'000));
  ctx.w.bulk(std::to_string(us % 1'000'000));
}

void cmd_dbsize(context& ctx) {
  auto r = ctx.n.key_count();
  if (!r) return reply_error(ctx.w, r.err());
  ctx.w.integer(static_cast<std::int64_t>(*r));
}

void cmd_flushdb(context& ctx) {
  if (!ctx.srv.options().allow_flush) {
    ctx.w.error("ERR FLUSHDB and FLUSHALL are disabled on this node (--resp-allow-flush=false)");
    return;
  }
  if (ctx.args.size() > 2 ||
      (ctx.args.size() == 2 && !iequals(ctx.args[1], "async") && !iequals(ctx.args[1], "sync"))) {
    ctx.w.error(syntax);
    return;
  }
  auto st = ctx.n.clear();
  if (!st) return reply_error(ctx.w, st.err());
  ctx.w.simple("OK");
}

// -- strings -------------------------------------------------------------------------------

// Tracking remembers a key after reading it (then L1 knows its expiry); a change racing
// with the read still reaches the client, because events are handled on this thread later.
void cmd_get(context& ctx) {
  if (crdt_get(ctx, ctx.args[1])) return;  // a federated counter answers its total
  reply_value(ctx, ctx.args[1]);
  if (ctx.defer) return;
  ctx.srv.remember_read(ctx.c, ctx.args[1]);
}

void cmd_mget(context& ctx) {
  ctx.w.array(ctx.args.size() - 1);
  for (std::size_t i = 1; i < ctx.args.size(); ++i) {
    if (!crdt_get(ctx, ctx.args[i], true)) reply_value(ctx, ctx.args[i], true);
    if (ctx.defer) return;  // the whole command reruns on a worker
    ctx.srv.remember_read(ctx.c, ctx.args[i]);
  }
}

/// Writes `value` expiring at `expires` (0 = never); an expiry already in the past deletes
/// the key, as Redis does for SET ... EXAT <past>.
result<void> plain_set(context& ctx, std::string_view key, std::string_view value, std::int64_t expires) {
  if (expires != 0 && expires <= now_ms()) return ctx.n.remove(key);
  if (typed::needs_escape(value)) [[unlikely]]
    return ctx.n.set_at(key, typed::encode_string(value), expires);
  return ctx.n.set_at(key, value, expires);
}

// SET's options, parsed as Redis does (its order of checks and its errors).
struct set_options {
  enum : unsigned { nx = 1, xx = 2, get = 4, keepttl = 8, expire = 16 };
  unsigned flags = 0;
  std::int64_t expires = 0;
  std::uint64_t lease = 0;
  bool read_modify_write() const noexcept { return (flags & (nx | xx | get | keepttl)) != 0; }
};

/// False with the error reply written in `w`.
bool parse_set(std::span<const std::string_view> args, resp_writer& w, set_options& o) {
  for (std::size_t i = 3; i < args.size(); ++i) {
    auto opt = args[i];
    bool more = i + 1 < args.size();
    if (iequals(opt, "nx") && !(o.flags & o.xx)) {
      o.flags |= o.nx;
    } else if (iequals(opt, "xx") && !(o.flags & o.nx)) {
      o.flags |= o.xx;
    } else if (iequals(opt, "get")) {
      o.flags |= o.get;
    } else if (iequals(opt, "lease") && more && o.lease == 0) {
      std::int64_t id = 0;
      if (!parse_int64(args[++i], id) || id <= 0) {
        w.error("ERR LEASE needs a lease id (WARP.LEASE GRANT)");
        return false;
      }
      o.lease = static_cast<std::uint64_t>(id);
    } else if (iequals(opt, "keepttl") && !(o.flags & o.expire)) {
      o.flags |= o.keepttl;
    } else if ((iequals(opt, "ex") || iequals(opt, "px") || iequals(opt, "exat") ||
                iequals(opt, "pxat")) &&
               !(o.flags & (o.keepttl | o.expire)) && more) {
      bool millis = iequals(opt, "px") || iequals(opt, "pxat");
      bool absolute = iequals(opt, "exat") || iequals(opt, "pxat");
      if (!expiry_from(w, args[++i], millis, absolute, "set", o.expires)) return false;
      o.flags |= o.expire;
    } else {
      w.error(syntax);
      return false;
    }
  }
  return true;
}

// SET with NX/XX/GET/KEEPTTL (and, on the strong pipeline, a plain SET with an expiry,
// which decides without the current value).
struct set_step final : rmw_step {
  std::string value;
  set_options o;
  bool applied = false, wrong = false;
  std::optional<std::string> old;
  set_step(std::string_view v, set_options opts) : value(v), o(opts) {}
  bool reads() const noexcept override { return o.read_modify_write(); }
  result<mutation> operator()(const buffer* cur, std::int64_t cur_exp) override {
    applied = wrong = false;
    old.reset();
    if ((o.flags & o.get) && cur) {
      old = stored_string(*cur);
      if (!old) {  // SET ... GET on a list: WRONGTYPE, nothing written (as Redis)
        wrong = true;
        return mutation::keep();
      }
    }
    if ((o.flags & o.nx) && cur) return mutation::keep();
    if ((o.flags & o.xx) && !cur) return mutation::keep();
    applied = true;
    std::int64_t exp = (o.flags & o.keepttl) ? (cur ? cur_exp : 0) : o.expires;
    // An expiry already past deletes the key, as Redis does for SET ... EXAT <past>.
    if (exp != 0 && exp <= now_ms()) return cur || !reads() ? mutation::erase() : mutation::keep();
    return mutation::put(typed::encode_string(value), exp);
  }
  void reply(resp_writer& w, const result<void>& st) const override {
    if (!st) return reply_error(w, st.err());
    if (wrong) return w.error(wrongtype);
    if (o.flags & o.get) {
      if (old)
        w.bulk(*old);
      else
        w.null();
    } else if (applied) {
      w.simple("OK");
    } else {
      w.null();
    }
  }
};

void run_rmw(context& ctx, std::string_view key, rmw_step& step) {
  auto r = ctx.n.update(
      key, [s = &step](const buffer* cur, std::int64_t cur_exp) { return (*s)(cur, cur_exp); });
  step.reply(ctx.w, r ? result<void>{} : result<void>{r.err()});
}

void cmd_set(context& ctx) {
  set_options o;
  if (!parse_set(ctx.args, ctx.w, o)) return;
  auto key = ctx.args[1];
  auto value = ctx.args[2];
  if (o.lease == 0 && crdt_string_write(ctx, key,
                                        {.value = value,
                                         .nx = (o.flags & o.nx) != 0,
                                         .xx = (o.flags & o.xx) != 0,
                                         .get = (o.flags & o.get) != 0,
                                         .keepttl = (o.flags & o.keepttl) != 0,
                                         .expires = o.expires}))
    return;
  if (o.lease != 0) {
    // A key attached to a lease (docs/coordination.md): deleted when the lease ends. Only
    // plain SET semantics; the attach waits on the coordination group: a worker's job.
    if (o.flags != 0) return ctx.w.error("ERR LEASE cannot be combined with other SET options");
    if (!ctx.j) {
      ctx.defer = true;
      return;
    }
    auto st = ctx.n.set(
        key, typed::needs_escape(value) ? typed::encode_string(value) : std::string{value},
        lease_id{o.lease});
    if (!st && st.code() == errc::not_found) return ctx.w.error("NOLEASE " + st.err().message());
    if (!st) return reply_error(ctx.w, st.err());
    ctx.w.simple("OK");
    return;
  }
  if (!o.read_modify_write()) {
    auto st = plain_set(ctx, key, value, o.expires);
    if (!st) return reply_error(ctx.w, st.err());
    ctx.w.simple("OK");
    return;
  }
  set_step step{value, o};
  run_rmw(ctx, key, step);
}

void setex_common(context& ctx, bool millis, std::string_view name) {
  std::int64_t expires = 0;
  if (!expiry_from(ctx.w, ctx.args[2], millis, false, name, expires)) return;
  if (crdt_string_write(ctx, ctx.args[1], {.value = ctx.args[3], .expires = expires})) return;
  auto st = plain_set(ctx, ctx.args[1], ctx.args[3], expires);
  if (!st) return reply_error(ctx.w, st.err());
  ctx.w.simple("OK");
}
void cmd_setex(context& ctx) {
  setex_common(ctx, false, "setex");
}
void cmd_psetex(context& ctx) {
  setex_common(ctx, true, "psetex");
}

struct setnx_step final : rmw_step {
  std::string value;
  bool applied = false;
  explicit setnx_step(std::string_view v) : value(v) {}
  result<mutation> operator()(const buffer* cur, std::int64_t) override {
    applied = cur == nullptr;
    if (cur) return mutation::keep();
    return mutation::put(typed::encode_string(value), 0);
  }
  void reply(resp_writer& w, const result<void>& st) const override {
    if (!st) return reply_error(w, st.err());
    w.integer(applied ? 1 : 0);
  }
};

void cmd_setnx(context& ctx) {
  if (crdt_string_write(
          ctx, ctx.args[1],
          {.value = ctx.args[2], .reply = crdt_string_op::reply_as::applied, .nx = true}))
    return;
  setnx_step step{ctx.args[2]};
  run_rmw(ctx, ctx.args[1], step);
}

/// GETSET's and GETDEL's reply: the previous string, null, WRONGTYPE or the error.
void reply_old(resp_writer& w, const result<void>& st, bool wrong,
               const std::optional<std::string>& old) {
  if (!st) return reply_error(w, st.err());
  if (wrong) return w.error(wrongtype);
  if (old)
    w.bulk(*old);
  else
    w.null();
}

// SET k v GET under its old name: the value is replaced (and any TTL dropped, as SET
// does); the reply is the previous value.
struct getset_step final : rmw_step {
  std::string value;
  std::optional<std::string> old;
  bool wrong = false;
  explicit getset_step(std::string_view v) : value(v) {}
  result<mutation> operator()(const buffer* cur, std::int64_t) override {
    old.reset();
    wrong = false;
    if (cur && !(old = stored_string(*cur))) {
      wrong = true;
      return mutation::keep();
    }
    return mutation::put(typed::encode_string(value), 0);
  }
  void reply(resp_writer& w, const result<void>& st) const override {
    reply_old(w, st, wrong, old);
  }
};

void cmd_getset(context& ctx) {
  if (crdt_string_write(ctx, ctx.args[1],
                        {.value = ctx.args[2], .reply = crdt_string_op::reply_as::old}))
    return;
  getset_step step{ctx.args[2]};
  run_rmw(ctx, ctx.args[1], step);
}

struct getdel_step final : rmw_step {
  std::optional<std::string> old;
  bool wrong = false;
  result<mutation> operator()(const buffer* cur, std::int64_t) override {
    old.reset();
    wrong = false;
    if (!cur) return mutation::keep();
    old = stored_string(*cur);
    if (!old) {
      wrong = true;
      return mutation::keep();
    }
    return mutation::erase();
  }
  void reply(resp_writer& w, const result<void>& st) const override {
    reply_old(w, st, wrong, old);
  }
};

void cmd_getdel(context& ctx) {
  if (auto kind = crdt_key_of(ctx.n.raw(), ctx.args[1]); kind != crdt_key::none) {
    if (kind != crdt_key::counter) return ctx.w.error(wrongtype);
    std::optional<std::string> old;
    auto r = *crdt_del(ctx, ctx.args[1], &old);
    if (!r) return reply_error(ctx.w, r.err());
    return old ? ctx.w.bulk(*old) : ctx.w.null();
  }
  getdel_step step;
  run_rmw(ctx, ctx.args[1], step);
}

void cmd_getex(context& ctx) {
  bool persist = false, has_exp = false;
  std::int64_t expires = 0;
  for (std::size_t i = 2; i < ctx.args.size(); ++i) {
    auto opt = ctx.args[i];
    bool more = i + 1 < ctx.args.size();
    if ((iequals(opt, "ex") || iequals(opt, "px") || iequals(opt, "exat") || iequals(opt, "pxat")) && more &&
        !has_exp && !persist) {
      bool millis = iequals(opt, "px") || iequals(opt, "pxat");
      bool absolute = iequals(opt, "exat") || iequals(opt, "pxat");
      if (!expiry_from(ctx.w, ctx.args[++i], millis, absolute, "getex", expires)) return;
      has_exp = true;
    } else if (iequals(opt, "persist") && !has_exp && !persist) {
      persist = true;
    } else {
      ctx.w.error(syntax);
      return;
    }
  }
  if (!has_exp && !persist) {
    reply_value(ctx, ctx.args[1]);
    if (ctx.defer) return;
    return ctx.srv.remember_read(ctx.c, ctx.args[1]);
  }
  std::optional<std::string> value;
  bool wrong = false;
  auto r =
      ctx.n.update(ctx.args[1], [&](const buffer* cur, std::int64_t cur_exp) -> result<mutation> {
        wrong = false;
        if (!cur) return mutation::keep();
        value = stored_string(*cur);
        if (!value) {
          wrong = true;
          return mutation::keep();
        }
        if (persist) return cur_exp == 0 ? mutation::keep() : mutation::put(**cur, 0);
        if (expires <= now_ms()) return mutation::erase();
        return mutation::put(**cur, expires);
      });
  if (!r) return reply_error(ctx.w, r.err());
  if (wrong) return ctx.w.error(wrongtype);
  if (value)
    ctx.w.bulk(*value);
  else
    ctx.w.null();
}

void cmd_mset(context& ctx) {
  if (ctx.args.size() % 2 != 1) {
    ctx.w.error("ERR wrong number of arguments for 'mset' command");
    return;
  }
  // Federated counters take SET's path (crdt_commands.cpp), after every pair is checked:
  // a refused pair writes nothing, as a refused MSET.
  std::vector<std::size_t> crdt_pairs;
  if (!ctx.n.raw().config().federation.region.empty()) {
    for (std::size_t i = 1; i + 1 < ctx.args.size(); i += 2) {
      auto refused = crdt_mset_refusal(ctx.n.raw(), ctx.args[i], ctx.args[i + 1]);
      if (!refused) continue;
      if (!refused->empty()) return ctx.w.error(*refused);
      crdt_pairs.push_back(i);
    }
  }
  // One node.set_many: one pass over the write stripes, storage and L1. Each key is
  // atomic, the set of keys is not (no multi-key transaction across key ranges).
  thread_local std::vector<kv_write> pairs;
  std::vector<std::string> escaped;  // values that would read as a typed header
  std::size_t to_escape = 0;
  for (std::size_t i = 1; i + 1 < ctx.args.size(); i += 2)
    to_escape += typed::needs_escape(ctx.args[i + 1]) ? 1 : 0;
  escaped.reserve(to_escape);  // no reallocation: `pairs` views these strings
  pairs.clear();
  std::size_t next_crdt = 0;  // both loops walk the pairs in order
  for (std::size_t i = 1; i + 1 < ctx.args.size(); i += 2) {
    if (next_crdt < crdt_pairs.size() && crdt_pairs[next_crdt] == i) {
      ++next_crdt;
      continue;
    }
    std::string_view v = ctx.args[i + 1];
    if (typed::needs_escape(v)) v = escaped.emplace_back(typed::encode_string(v));
    pairs.push_back({ctx.args[i], v, 0});
  }
  auto st = pairs.empty() ? result<void>{} : ctx.n.set_many(pairs);
  pairs.clear();
  if (!st) return reply_error(ctx.w, st.err());
  for (auto i : crdt_pairs)
    if (auto w = crdt_mset_write(ctx, ctx.args[i], ctx.args[i + 1]); !w)
      return reply_error(ctx.w, w.err());
  ctx.w.simple("OK");
}

struct del_step final : rmw_step {
  bool existed = false;
  result<mutation> operator()(const buffer* cur, std::int64_t) override {
    existed = cur != nullptr;
    return cur ? mutation::erase() : mutation::keep();
  }
  void reply(resp_writer& w, const result<void>& st) const override {
    if (!st) return reply_error(w, st.err());
    w.integer(existed ? 1 : 0);
  }
};

void cmd_del(context& ctx) {
  std::int64_t removed = 0;
  for (std::size_t i = 1; i < ctx.args.size(); ++i) {
    if (auto crdt = crdt_del(ctx, ctx.args[i])) {  // a clear that merges, not a tombstone
      if (!*crdt) return reply_error(ctx.w, crdt->err());
      removed += **crdt ? 1 : 0;
      continue;
    }
    del_step step;
    auto r = ctx.n.update(
        ctx.args[i], [s = &step](const buffer* cur, std::int64_t exp) { return (*s)(cur, exp); });
    if (!r) return reply_error(ctx.w, r.err());
    if (step.existed) ++removed;
  }
  ctx.w.integer(removed);
}

void cmd_exists(context& ctx) {
  std::int64_t found = 0;
  for (std::size_t i = 1; i < ctx.args.size(); ++i) {
    ctx.srv.remember_read(ctx.c, ctx.args[i]);
    if (crdt_key_of(ctx.n.raw(), ctx.args[i]) != crdt_key::none) {
      // An emptied set or map, a deleted counter: stored for merging, absent to a client.
      value_type t;
      if (!shown_type(ctx, ctx.args[i], t)) return;  // deferred (the command reruns) or failed
      found += t != value_type::none ? 1 : 0;
      continue;
    }
    auto r = ctx.n.contains(ctx.args[i]);
    if (!r) return reply_error(ctx.w, r.err());
    if (*r) ++found;
  }
  ctx.w.integer(found);
}

void cmd_type(context& ctx) {
  value_type t;
  if (shown_type(ctx, ctx.args[1], t)) ctx.w.simple(type_name(t));
}

void expire_common(context& ctx, bool millis, bool absolute, std::string_view name) {
  // Options first, then the amount: Redis reports a bad option before a bad number.
  enum : unsigned { nx = 1, xx = 2, gt = 4, lt = 8 };
  unsigned flags = 0;
  for (std::size_t i = 3; i < ctx.args.size(); ++i) {
    auto opt = ctx.args[i];
    if (iequals(opt, "nx"))
      flags |= nx;
    else if (iequals(opt, "xx"))
      flags |= xx;
    else if (iequals(opt, "gt"))
      flags |= gt;
    else if (iequals(opt, "lt"))
      flags |= lt;
    else {
      ctx.w.error("ERR Unsupported option " + std::string(opt));
      return;
    }
  }
  if ((flags & nx) && (flags & (xx | gt | lt))) {
    ctx.w.error("ERR NX and XX, GT or LT options at the same time are not compatible");
    return;
  }
  if ((flags & gt) && (flags & lt)) {
    ctx.w.error("ERR GT and LT options at the same time are not compatible");
    return;
  }
  std::int64_t amount = 0;
  if (!arg_int(ctx, 2, amount)) return;
  std::int64_t when = amount;
  auto invalid = [&] {
    ctx.w.error("ERR invalid expire time in '" + std::string(name) + "' command");
  };
  if (!millis) {
    if (when > std::numeric_limits<std::int64_t>::max() / 1000 ||
        when < std::numeric_limits<std::int64_t>::min() / 1000)
      return invalid();
    when *= 1000;
  }
  if (!absolute) {
    std::int64_t now = now_ms();
    if (when > std::numeric_limits<std::int64_t>::max() - now) return invalid();
    when += now;
  }
  bool changed = false;
  auto r =
      ctx.n.update(ctx.args[1], [&](const buffer* cur, std::int64_t cur_exp) -> result<mutation> {
        if (!cur) return mutation::keep();
        if ((flags & nx) && cur_exp != 0) return mutation::keep();
        if ((flags & xx) && cur_exp == 0) return mutation::keep();
        // GT/LT: a key without TTL counts as an infinite TTL.
        if ((flags & gt) && (cur_exp == 0 || when <= cur_exp)) return mutation::keep();
        if ((flags & lt) && cur_exp != 0 && when >= cur_exp) return mutation::keep();
        changed = true;
        if (when <= now_ms()) return mutation::erase();
        return mutation::put(**cur, when);
      });
  if (!r) return reply_error(ctx.w, r.err());
  ctx.w.integer(changed ? 1 : 0);
}
void cmd_expire(context& ctx) {
  expire_common(ctx, false, false, "expire");
}
void cmd_pexpire(context& ctx) {
  expire_common(ctx, true, false, "pexpire");
}
void cmd_expireat(context& ctx) {
  expire_common(ctx, false, true, "expireat");
}
void cmd_pexpireat(context& ctx) {
  expire_common(ctx, true, true, "pexpireat");
}

void ttl_common(context& ctx, bool millis) {
  ctx.srv.remember_read(ctx.c, ctx.args[1]);
  auto r = ctx.n.expiry(ctx.args[1]);
  if (!r) {
    if (r.code() == errc::not_found) return ctx.w.integer(-2);
    return reply_error(ctx.w, r.err());
  }
  if (*r == 0) return ctx.w.integer(-1);
  std::int64_t left = *r - now_ms();
  if (left < 0) return ctx.w.integer(-2);
  ctx.w.integer(millis ? left : (left + 500) / 1000);
}
void cmd_ttl(context& ctx) {
  ttl_common(ctx, false);
}
void cmd_pttl(context& ctx) {
  ttl_common(ctx, true);
}

void cmd_persist(context& ctx) {
  bool changed = false;
  auto r =
      ctx.n.update(ctx.args[1], [&](const buffer* cur, std::int64_t cur_exp) -> result<mutation> {
        if (!cur || cur_exp == 0) return mutation::keep();
        changed = true;
        return mutation::put(**cur, 0);
      });
  if (!r) return reply_error(ctx.w, r.err());
  ctx.w.integer(changed ? 1 : 0);
}

}  // namespace

void reply_node_error(resp_writer& w, const error& e) {
  reply_error(w, e);
}

result<mutation> incr_step::operator()(const buffer* cur, std::int64_t cur_exp) {
  std::int64_t v = 0;
  failed = fail::none;
  if (cur && !parse_int64(**cur, v)) {
    // Not a number: a list, set... answers WRONGTYPE (an escaped string is no number).
    failed = typed::type_of(**cur) == value_type::string ? fail::not_int : fail::wrong_type;
    return mutation::keep();
  }
  if ((delta > 0 && v > std::numeric_limits<std::int64_t>::max() - delta) ||
      (delta < 0 && v < std::numeric_limits<std::int64_t>::min() - delta)) {
    failed = fail::overflow;
    return mutation::keep();
  }
  value = v + delta;
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), value);
  (void)ec;
  // INCR keeps the key's TTL, like Redis.
  return mutation::put(std::string(buf, end), cur ? cur_exp : 0);
}

void incr_step::reply(resp_writer& w, const result<void>& st) const {
  if (!st) return reply_error(w, st.err());
  if (failed == fail::not_int) return w.error(not_int);
  if (failed == fail::wrong_type) return w.error(wrongtype);
  if (failed == fail::overflow) return w.error("ERR increment or decrement would overflow");
  w.integer(value);
}

void run_incr_batch(node& n, resp_writer& w, std::span<incr_step> steps) {
  // A federated counter among them: one at a time, in order (rare; counters are PN-counters).
  for (auto& s : steps)
    if (crdt_key_of(n, s.key) != crdt_key::none) {
      for (auto& t : steps)
        if (crdt_key_of(n, t.key) != crdt_key::none)
          crdt_incr(n, w, t.key, t.delta);
        else {
          auto r = n.update(
              t.key, [p = &t](const buffer* cur, std::int64_t exp) { return (*p)(cur, exp); });
          t.reply(w, r ? result<void>{} : result<void>{r.err()});
        }
      return;
    }
  using fn_type = std::function<result<mutation>(const buffer*, std::int64_t)>;
  // One pointer captured: each function fits std::function's inline storage (no malloc).
  std::vector<fn_type> fns;
  std::vector<node::update_item> items;
  std::vector<result<void>> out(steps.size());
  fns.reserve(steps.size());
  items.reserve(steps.size());
  for (auto& s : steps)
    fns.emplace_back([p = &s](const buffer* cur, std::int64_t exp) { return (*p)(cur, exp); });
  for (std::size_t i = 0; i < steps.size(); ++i) items.push_back({steps[i].key, &fns[i]});
  n.update_many(items, out);
  for (std::size_t i = 0; i < steps.size(); ++i) steps[i].reply(w, out[i]);
}

namespace {

void incr_common(context& ctx, std::int64_t delta) {
  if (crdt_key_of(ctx.n.raw(), ctx.args[1]) != crdt_key::none)
    return crdt_incr(ctx.n.raw(), ctx.w, ctx.args[1], delta);
  incr_step step{ctx.args[1], delta};
  auto r = ctx.n.update(ctx.args[1], [s = &step](const buffer* cur, std::int64_t cur_exp) {
    return (*s)(cur, cur_exp);
  });
  step.reply(ctx.w, r ? result<void>{} : result<void>{r.err()});
}
void cmd_incr(context& ctx) {
  incr_common(ctx, 1);
}
void cmd_decr(context& ctx) {
  incr_common(ctx, -1);
}
void cmd_incrby(context& ctx) {
  std::int64_t d = 0;
  if (!arg_int(ctx, 2, d)) return;
  incr_common(ctx, d);
}
void cmd_decrby(context& ctx) {
  std::int64_t d = 0;
  if (!arg_int(ctx, 2, d)) return;
  if (d == std::numeric_limits<std::int64_t>::min()) {
    ctx.w.error("ERR decrement would overflow");
    return;
  }
  incr_common(ctx, -d);
}

struct append_step final : rmw_step {
  std::string extra;
  std::size_t length = 0;
  bool wrong = false;
  explicit append_step(std::string_view e) : extra(e) {}
  result<mutation> operator()(const buffer* cur, std::int64_t cur_exp) override {
    wrong = false;
    std::string next;
    if (cur) {
      auto old = stored_string(*cur);
      if (!old) {
        wrong = true;
        return mutation::keep();
      }
      next = std::move(*old);
    }
    next.append(extra);
    length = next.size();
    return mutation::put(typed::encode_string(next), cur ? cur_exp : 0);
  }
  void reply(resp_writer& w, const result<void>& st) const override {
    if (!st) return reply_error(w, st.err());
    if (wrong) return w.error(wrongtype);
    w.integer(static_cast<std::int64_t>(length));
  }
};

void cmd_append(context& ctx) {
  if (crdt_string_write(
          ctx, ctx.args[1],
          {.value = ctx.args[2], .reply = crdt_string_op::reply_as::length, .append = true}))
    return;
  append_step step{ctx.args[2]};
  run_rmw(ctx, ctx.args[1], step);
}

void cmd_strlen(context& ctx) {
  auto key = ctx.args[1];
  ctx.srv.remember_read(ctx.c, key);
  with_value(ctx, key, [&](const std::string_view* stored) {
    if (!stored) return ctx.w.integer(0);
    if (typed::type_of(*stored) != value_type::string) return ctx.w.error(wrongtype);
    ctx.w.integer(static_cast<std::int64_t>(typed::string_payload(*stored).size()));
  });
}

// -- keyspace ------------------------------------------------------------------------------

/// The type a key of a KEYS/SCAN page shows, read from L1 or storage on this thread (none
/// when absent or unreadable): a CRDT key's by crdt_type_of.
value_type page_key_type(context& ctx, const std::string& k, bool crdt) {
  value_type t = value_type::none;
  auto of = [&](std::string_view bytes) { t = crdt ? crdt_type_of(bytes) : typed::type_of(bytes); };
  if (!ctx.n.read_if_present(k, of)) {
    if (auto r = ctx.n.get(k)) of(view(*r));
  }
  return t;
}

/// Drops the CRDT keys of a page that show as absent (an emptied set or map, a deleted
/// counter: stored for merging, absent to a client); the others are not read.
void drop_absent_crdt(context& ctx, std::vector<std::string>& keys) {
  if (ctx.n.raw().config().federation.region.empty()) return;
  std::erase_if(keys, [&](const std::string& k) {
    return crdt_key_of(ctx.n.raw(), k) != crdt_key::none &&
           page_key_type(ctx, k, true) == value_type::none;
  });
}

void cmd_scan(context& ctx) {
  std::uint64_t cursor = 0;
  auto text = ctx.args[1];
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), cursor);
  std::string after;
  if (ec != std::errc{} || ptr != text.data() + text.size() ||
      !ctx.srv.load_cursor(cursor, after)) {
    ctx.w.error("ERR invalid cursor");
    return;
  }
  std::string_view match;
  bool match_empty_key = false;  // MATCH "": node.scan reads an empty glob as "every key"
  std::int64_t count = 10;
  std::optional<value_type> type_filter;
  for (std::size_t i = 2; i < ctx.args.size(); ++i) {
    auto opt = ctx.args[i];
    bool more = i + 1 < ctx.args.size();
    if (iequals(opt, "match") && more) {
      match = ctx.args[++i];
      match_empty_key = match.empty();
      if (match == "*") match = {};
    } else if (iequals(opt, "count") && more) {
      if (!arg_int(ctx, ++i, count)) return;
      if (count < 1) {
        ctx.w.error(syntax);
        return;
      }
    } else if (iequals(opt, "type") && more) {
      auto wanted = ctx.args[++i];
      type_filter = value_type::none;  // an unknown type name matches nothing
      for (auto t : {value_type::string, value_type::list, value_type::zset, value_type::set,
                     value_type::hash})
        if (iequals(wanted, type_name(t))) type_filter = t;
    } else {
      ctx.w.error(syntax);
      return;
    }
  }
  auto page =
      ctx.n.scan(after, static_cast<std::size_t>(std::min<std::int64_t>(count, 100000)), match);
  if (!page) return reply_error(ctx.w, page.err());
  if (match_empty_key) std::erase_if(page->keys, [](const std::string& k) { return !k.empty(); });
  std::uint64_t next =
      page->done || page->next_after.empty() ? 0 : ctx.srv.save_cursor(page->next_after);
  ctx.w.array(2);
  ctx.w.bulk(std::to_string(next));
  if (type_filter) {
    // TYPE reads each key of the page (bounded by COUNT) for its type tag.
    std::erase_if(page->keys, [&](const std::string& k) {
      return page_key_type(ctx, k, crdt_key_of(ctx.n.raw(), k) != crdt_key::none) != *type_filter;
    });
  } else {
    drop_absent_crdt(ctx, page->keys);
  }
  ctx.w.array(page->keys.size());
  for (auto& k : page->keys) ctx.w.bulk(k);
}

void cmd_keys(context& ctx) {
  std::string_view pattern = ctx.args[1];
  if (pattern.empty()) {  // matches the empty key only; node.scan reads "" as "every key"
    std::vector<std::string> one;
    auto r = ctx.n.contains(pattern);
    if (!r) return reply_error(ctx.w, r.err());
    if (*r) one.emplace_back(pattern);
    drop_absent_crdt(ctx, one);
    r = !one.empty();
    ctx.w.array(*r ? 1 : 0);
    if (*r) ctx.w.bulk(pattern);
    return;
  }
  if (pattern == "*") pattern = {};
  std::vector<std::string> keys;
  std::string after;
  for (;;) {
    auto page = ctx.n.scan(after, 1000, pattern);
    if (!page) return reply_error(ctx.w, page.err());
    for (auto& k : page->keys) keys.push_back(std::move(k));
    if (page->done || page->next_after.empty()) break;
    after = page->next_after;
  }
  drop_absent_crdt(ctx, keys);
  ctx.w.array(keys.size());
  for (auto& k : keys) ctx.w.bulk(k);
}

// -- pub/sub -------------------------------------------------------------------------------

void cmd_subscribe(context& ctx) {
  for (std::size_t i = 1; i < ctx.args.size(); ++i) ctx.srv.subscribe(ctx.c, ctx.args[i], false);
}
void cmd_psubscribe(context& ctx) {
  for (std::size_t i = 1; i < ctx.args.size(); ++i) ctx.srv.subscribe(ctx.c, ctx.args[i], true);
}
void cmd_unsubscribe(context& ctx) {
  if (ctx.args.size() == 1) return ctx.srv.unsubscribe_all(ctx.c, false, true);
  for (std::size_t i = 1; i < ctx.args.size(); ++i)
    ctx.srv.unsubscribe(ctx.c, ctx.args[i], false, true);
}
void cmd_punsubscribe(context& ctx) {
  if (ctx.args.size() == 1) return ctx.srv.unsubscribe_all(ctx.c, true, true);
  for (std::size_t i = 1; i < ctx.args.size(); ++i)
    ctx.srv.unsubscribe(ctx.c, ctx.args[i], true, true);
}
void cmd_publish(context& ctx) {
  ctx.w.integer(static_cast<std::int64_t>(ctx.srv.publish(ctx.args[1], ctx.args[2])));
}

void cmd_reset(context& ctx) {
  auto& c = ctx.c;
  ctx.srv.unsubscribe_all(c, false, false);
  ctx.srv.unsubscribe_all(c, true, false);
  if (c.tracking) {
    c.tracking = c.bcast = c.optin = c.optout = c.noloop = false;
    c.redirect = 0;
    c.prefixes.clear();
    ctx.srv.tracking_changed(c);
  }
  ctx.srv.discard_transaction(c);
  ctx.srv.unwatch_all(c);
  c.name.clear();
  c.proto = 2;
  ctx.w.set_protocol(2);
  c.authenticated = ctx.srv.options().password.empty();
  ctx.w.simple("RESET");
}

const std::vector<command_def> table = {
    // name, arity, flags, first, last, step, handler, no_auth, in_pubsub, group, summary
    {"ping", -1, "fast", 0, 0, 0, cmd_ping, false, true, "connection", "Ping the server"},
    {"echo", 2, "fast", 0, 0, 0, cmd_echo, false, false, "connection", "Echo the given string"},
    {"hello", -1, "noscript loading stale fast no_auth", 0, 0, 0, cmd_hello, true, false,
     "connection", "Handshake: protocol version, auth, client name"},
    {"auth", -2, "noscript loading stale fast no_auth", 0, 0, 0, cmd_auth, true, false,
     "connection", "Authenticate to the server"},
    {"select", 2, "loading stale fast", 0, 0, 0, cmd_select, false, false, "connection",
     "Select database 0 (the only one)"},
    {"quit", -1, "noscript loading stale fast no_auth", 0, 0, 0, cmd_quit, true, true, "connection",
     "Close the connection"},
    {"reset", 1, "noscript loading stale fast no_auth", 0, 0, 0, cmd_reset, true, true,
     "connection", "Reset the connection"},
    {"multi", 1, "noscript loading stale fast", 0, 0, 0, cmd_multi, false, false, "transactions",
     "Start a transaction"},
    {"exec", 1, "noscript loading stale skip_slowlog", 0, 0, 0, cmd_exec, false, false,
     "transactions", "Execute the queued commands"},
    {"discard", 1, "noscript loading stale fast", 0, 0, 0, cmd_discard, false, false,
     "transactions", "Discard the queued commands"},
    {"watch", -2, "noscript loading stale fast", 1, -1, 1, cmd_watch, false, false, "transactions",
     "Abort the next EXEC if these keys change"},
    {"unwatch", 1, "noscript loading stale fast", 0, 0, 0, cmd_unwatch, false, false,
     "transactions", "Forget the WATCHed keys"},
    {"client", -2, "admin noscript loading stale", 0, 0, 0, cmd_client, false, false, "connection",
     "Client connection commands (ID SETNAME GETNAME INFO LIST TRACKING CACHING)"},
    {"command", -1, "loading stale", 0, 0, 0, cmd_command, false, false, "server",
     "Details about commands"},
    {"info", -1, "loading stale", 0, 0, 0, cmd_info, false, false, "server",
     "Information and statistics"},
    {"config", -2, "admin noscript loading stale", 0, 0, 0, cmd_config, false, false, "server",
     "Read a few settings (GET only)"},
    {"time", 1, "loading stale fast", 0, 0, 0, cmd_time, false, false, "server", "The server time"},
    {"dbsize", 1, "readonly fast", 0, 0, 0, cmd_dbsize, false, false, "server", "Number of keys"},
    {"flushdb", -1, "write", 0, 0, 0, cmd_flushdb, false, false, "server", "Remove every key"},
    {"flushall", -1, "write", 0, 0, 0, cmd_flushdb, false, false, "server", "Remove every key"},
    {"get", 2, "readonly fast", 1, 1, 1, cmd_get, false, false, "string", "Get the value of a key"},
    {"set", -3, "write denyoom", 1, 1, 1, cmd_set, false, false, "string",
     "Set a key (EX PX EXAT PXAT NX XX KEEPTTL GET)"},
    {"setex", 4, "write denyoom", 1, 1, 1, cmd_setex, false, false, "string",
     "Set a key with a TTL in seconds"},
    {"psetex", 4, "write denyoom", 1, 1, 1, cmd_psetex, false, false, "string",
     "Set a key with a TTL in milliseconds"},
    {"setnx", 3, "write denyoom fast", 1, 1, 1, cmd_setnx, false, false, "string",
     "Set a key if absent"},
    {"getset", 3, "write denyoom fast", 1, 1, 1, cmd_getset, false, false, "string",
     "Set a key and return its old value"},
    {"getdel", 2, "write fast", 1, 1, 1, cmd_getdel, false, false, "string",
     "Get and delete a key"},
    {"getex", -2, "write fast", 1, 1, 1, cmd_getex, false, false, "string",
     "Get a key and change its TTL"},
    {"mget", -2, "readonly fast", 1, -1, 1, cmd_mget, false, false, "string", "Get several keys"},
    {"mset", -3, "write denyoom", 1, -1, 2, cmd_mset, false, false, "string",
     "Set several keys (each atomic, not all together)"},
    {"del", -2, "write", 1, -1, 1, cmd_del, false, false, "generic", "Delete keys"},
    {"unlink", -2, "write fast", 1, -1, 1, cmd_del, false, false, "generic", "Delete keys"},
    {"exists", -2, "readonly fast", 1, -1, 1, cmd_exists, false, false, "generic",
     "Count existing keys"},
    {"expire", -3, "write fast", 1, 1, 1, cmd_expire, false, false, "generic",
     "Set a TTL in seconds"},
    {"pexpire", -3, "write fast", 1, 1, 1, cmd_pexpire, false, false, "generic",
     "Set a TTL in milliseconds"},
    {"expireat", -3, "write fast", 1, 1, 1, cmd_expireat, false, false, "generic",
     "Set an absolute expiry in seconds"},
    {"pexpireat", -3, "write fast", 1, 1, 1, cmd_pexpireat, false, false, "generic",
     "Set an absolute expiry in milliseconds"},
    {"ttl", 2, "readonly fast", 1, 1, 1, cmd_ttl, false, false, "generic", "TTL in seconds"},
    {"pttl", 2, "readonly fast", 1, 1, 1, cmd_pttl, false, false, "generic", "TTL in milliseconds"},
    {"persist", 2, "write fast", 1, 1, 1, cmd_persist, false, false, "generic",
     "Remove a key's TTL"},
    {"type", 2, "readonly fast", 1, 1, 1, cmd_type, false, false, "generic",
     "Type of a key (string, list, zset, set, hash or none)"},
    {"incr", 2, "write denyoom fast", 1, 1, 1, cmd_incr, false, false, "string",
     "Increment an integer"},
    {"incrby", 3, "write denyoom fast", 1, 1, 1, cmd_incrby, false, false, "string",
     "Increment an integer by an amount"},
    {"decr", 2, "write denyoom fast", 1, 1, 1, cmd_decr, false, false, "string",
     "Decrement an integer"},
    {"decrby", 3, "write denyoom fast", 1, 1, 1, cmd_decrby, false, false, "string",
     "Decrement an integer by an amount"},
    {"append", 3, "write denyoom fast", 1, 1, 1, cmd_append, false, false, "string",
     "Append to a value"},
    {"strlen", 2, "readonly fast", 1, 1, 1, cmd_strlen, false, false, "string",
     "Length of a value"},
    {"scan", -2, "readonly", 0, 0, 0, cmd_scan, false, false, "generic",
     "Iterate keys (MATCH COUNT TYPE)"},
    {"keys", 2, "readonly", 0, 0, 0, cmd_keys, false, false, "generic", "Keys matching a pattern"},
    {"lpush", -3, "write denyoom fast", 1, 1, 1, cmd_lpush, false, false, "list",
     "Prepend elements to a list"},
    {"rpush", -3, "write denyoom fast", 1, 1, 1, cmd_rpush, false, false, "list",
     "Append elements to a list"},
    {"lpushx", -3, "write denyoom fast", 1, 1, 1, cmd_lpushx, false, false, "list",
     "Prepend elements to an existing list"},
    {"rpushx", -3, "write denyoom fast", 1, 1, 1, cmd_rpushx, false, false, "list",
     "Append elements to an existing list"},
    {"lpop", -2, "write fast", 1, 1, 1, cmd_lpop, false, false, "list",
     "Remove and return the first elements"},
    {"rpop", -2, "write fast", 1, 1, 1, cmd_rpop, false, false, "list",
     "Remove and return the last elements"},
    {"llen", 2, "readonly fast", 1, 1, 1, cmd_llen, false, false, "list", "Length of a list"},
    {"lrange", 4, "readonly", 1, 1, 1, cmd_lrange, false, false, "list", "A range of a list"},
    {"lindex", 3, "readonly", 1, 1, 1, cmd_lindex, false, false, "list",
     "An element of a list by index"},
    {"lset", 4, "write denyoom", 1, 1, 1, cmd_lset, false, false, "list",
     "Set an element of a list by index"},
    {"lrem", 4, "write", 1, 1, 1, cmd_lrem, false, false, "list",
     "Remove elements equal to a value"},
    {"ltrim", 4, "write", 1, 1, 1, cmd_ltrim, false, false, "list", "Trim a list to a range"},
    {"blpop", -3, "write noscript", 1, 1, 1, cmd_blocking, false, false, "list",
     "Not supported (blocking): use LPOP"},
    {"brpop", -3, "write noscript", 1, 1, 1, cmd_blocking, false, false, "list",
     "Not supported (blocking): use RPOP"},
    {"brpoplpush", 4, "write noscript", 1, 1, 1, cmd_blocking, false, false, "list",
     "Not supported (blocking)"},
    {"blmove", 6, "write noscript", 1, 1, 1, cmd_blocking, false, false, "list",
     "Not supported (blocking)"},
    {"blmpop", -5, "write noscript", 1, 1, 1, cmd_blocking, false, false, "list",
     "Not supported (blocking)"},
    {"zadd", -4, "write denyoom fast", 1, 1, 1, cmd_zadd, false, false, "sorted_set",
     "Add members or update scores (NX XX GT LT CH INCR)"},
    {"zincrby", 4, "write denyoom fast", 1, 1, 1, cmd_zincrby, false, false, "sorted_set",
     "Increment a member's score"},
    {"zrem", -3, "write fast", 1, 1, 1, cmd_zrem, false, false, "sorted_set", "Remove members"},
    {"zscore", 3, "readonly fast", 1, 1, 1, cmd_zscore, false, false, "sorted_set",
     "A member's score"},
    {"zcard", 2, "readonly fast", 1, 1, 1, cmd_zcard, false, false, "sorted_set",
     "Number of members"},
    {"zrange", -4, "readonly", 1, 1, 1, cmd_zrange, false, false, "sorted_set",
     "A range by rank or score (BYSCORE REV LIMIT WITHSCORES)"},
    {"zrevrange", -4, "readonly", 1, 1, 1, cmd_zrevrange, false, false, "sorted_set",
     "A range by rank, high to low"},
    {"zrangebyscore", -4, "readonly", 1, 1, 1, cmd_zrangebyscore, false, false, "sorted_set",
     "A range by score"},
    {"zrevrangebyscore", -4, "readonly", 1, 1, 1, cmd_zrevrangebyscore, false, false, "sorted_set",
     "A range by score, high to low"},
    {"zcount", 4, "readonly fast", 1, 1, 1, cmd_zcount, false, false, "sorted_set",
     "Members within a score range"},
    {"zrank", 3, "readonly fast", 1, 1, 1, cmd_zrank, false, false, "sorted_set",
     "A member's rank"},
    {"zrevrank", 3, "readonly fast", 1, 1, 1, cmd_zrevrank, false, false, "sorted_set",
     "A member's rank, high to low"},
    {"zpopmin", -2, "write fast", 1, 1, 1, cmd_zpopmin, false, false, "sorted_set",
     "Remove and return the lowest members"},
    {"zpopmax", -2, "write fast", 1, 1, 1, cmd_zpopmax, false, false, "sorted_set",
     "Remove and return the highest members"},
    {"bzpopmin", -3, "write noscript", 1, 1, 1, cmd_blocking, false, false, "sorted_set",
     "Not supported (blocking): use ZPOPMIN"},
    {"bzpopmax", -3, "write noscript", 1, 1, 1, cmd_blocking, false, false, "sorted_set",
     "Not supported (blocking): use ZPOPMAX"},
    {"bzmpop", -5, "write noscript", 1, 1, 1, cmd_blocking, false, false, "sorted_set",
     "Not supported (blocking)"},
    {"warp.lock", -2, "write", 0, 0, 0, cmd_warp_lock, false, false, "warp",
     "Take a fenced lock: name [TIMEOUT ms] [SESSION lease] [OWNER o] -> fencing token"},
    {"warp.unlock", -3, "write", 0, 0, 0, cmd_warp_unlock, false, false, "warp",
     "Release a lock: name token [SESSION lease] [OWNER o]"},
    {"warp.lease", -2, "write", 0, 0, 0, cmd_warp_lease, false, false, "warp",
     "Leases: GRANT ttl | KEEPALIVE id | REVOKE id | TTL id | LIST"},
    {"warp.fencedset", 5, "write denyoom", 1, 1, 1, cmd_warp_fencedset, false, false, "warp",
     "Write a fenced register: key value lock token (refused unless token holds lock)"},
    {"warp.fencedget", 2, "readonly", 1, 1, 1, cmd_warp_fencedget, false, false, "warp",
     "Read a fenced register"},
    {"sadd", -3, "write denyoom fast", 1, 1, 1, cmd_sadd, false, false, "set", "Add members"},
    {"srem", -3, "write fast", 1, 1, 1, cmd_srem, false, false, "set", "Remove members"},
    {"smembers", 2, "readonly", 1, 1, 1, cmd_smembers, false, false, "set", "Every member"},
    {"sismember", 3, "readonly fast", 1, 1, 1, cmd_sismember, false, false, "set",
     "Is this a member"},
    {"scard", 2, "readonly fast", 1, 1, 1, cmd_scard, false, false, "set", "Number of members"},
    {"spop", -2, "write fast", 1, 1, 1, cmd_spop, false, false, "set",
     "Remove and return random members"},
    {"hset", -4, "write denyoom fast", 1, 1, 1, cmd_hset, false, false, "hash", "Set fields"},
    {"hmset", -4, "write denyoom fast", 1, 1, 1, cmd_hmset, false, false, "hash",
     "Set fields (old form, replies OK)"},
    {"hget", 3, "readonly fast", 1, 1, 1, cmd_hget, false, false, "hash", "A field's value"},
    {"hmget", -3, "readonly fast", 1, 1, 1, cmd_hmget, false, false, "hash",
     "Several fields' values"},
    {"hdel", -3, "write fast", 1, 1, 1, cmd_hdel, false, false, "hash", "Delete fields"},
    {"hgetall", 2, "readonly", 1, 1, 1, cmd_hgetall, false, false, "hash", "Every field and value"},
    {"hkeys", 2, "readonly", 1, 1, 1, cmd_hkeys, false, false, "hash", "Every field"},
    {"hvals", 2, "readonly", 1, 1, 1, cmd_hvals, false, false, "hash", "Every value"},
    {"hlen", 2, "readonly fast", 1, 1, 1, cmd_hlen, false, false, "hash", "Number of fields"},
    {"hexists", 3, "readonly fast", 1, 1, 1, cmd_hexists, false, false, "hash",
     "Does a field exist"},
    {"hincrby", 4, "write denyoom fast", 1, 1, 1, cmd_hincrby, false, false, "hash",
     "Increment a field's integer"},
    {"subscribe", -2, "pubsub noscript loading stale", 0, 0, 0, cmd_subscribe, false, true,
     "pubsub", "Listen to channels (__keyspace@0__:<key>, __keyevent@0__:<event>)"},
    {"psubscribe", -2, "pubsub noscript loading stale", 0, 0, 0, cmd_psubscribe, false, true,
     "pubsub", "Listen to channel patterns"},
    {"unsubscribe", -1, "pubsub noscript loading stale", 0, 0, 0, cmd_unsubscribe, false, true,
     "pubsub", "Stop listening to channels"},
    {"punsubscribe", -1, "pubsub noscript loading stale", 0, 0, 0, cmd_punsubscribe, false, true,
     "pubsub", "Stop listening to channel patterns"},
    {"publish", 3, "pubsub loading stale fast", 0, 0, 0, cmd_publish, false, false, "pubsub",
     "Post a message to this sidecar's subscribers"},
};

struct lookup_table {
  std::unordered_map<std::string, const command_def*, string_hash, std::equal_to<>> by_name;
  lookup_table() {
    for (const auto& d : table) by_name.emplace(std::string(d.name), &d);
  }
};

}  // namespace

void run_set_batch(node& n, resp_writer& w, std::span<const kv_write> batch) {
  if (auto st = n.set_many(batch); st) {
    for (std::size_t i = 0; i < batch.size(); ++i) w.simple("OK");
    return;
  }
  // Some pair failed: one write per SET, so each gets its own reply. Nothing was written
  // when validation failed; after a storage error the pairs before it were, and writing
  // them again is harmless (the same value, a newer version).
  for (auto& kv : batch) {
    auto st = n.set_at(kv.key, kv.value, kv.expires_at_ms);
    if (st)
      w.simple("OK");
    else
      reply_error(w, st.err());
  }
}

const std::vector<command_def>& commands() {
  return table;
}

const command_def* find_command(std::string_view name) {
  static const lookup_table lookup;
  char buf[32];
  if (name.size() > sizeof(buf)) return nullptr;
  for (std::size_t i = 0; i < name.size(); ++i) {
    char ch = name[i];
    buf[i] = ch >= 'A' && ch <= 'Z' ? static_cast<char>(ch - 'A' + 'a') : ch;
  }
  auto it = lookup.by_name.find(std::string_view(buf, name.size()));
  return it == lookup.by_name.end() ? nullptr : it->second;
}

std::string server::info_text(std::span<const std::string_view> sections) {
  auto wanted = [&](std::string_view s) {
    if (sections.empty()) return true;
    for (auto sec : sections)
      if (iequals(sec, s) || iequals(sec, "all") || iequals(sec, "everything") || iequals(sec, "default"))
        return true;
    return false;
  };
  std::string out;
  auto line = [&](std::string_view k, const auto& v) {
    out.append(k);
    out.push_back(':');
    if constexpr (std::is_convertible_v<decltype(v), std::string_view>)
      out.append(std::string_view(v));
    else
      out.append(std::to_string(v));
    out.append("\r\n");
  };
  auto now = now_ms();
  if (wanted("server")) {
    out += "# Server\r\n";
    line("redis_version", redis_version);
    line("warp_sidecar", "1");
    line("redis_mode", "standalone");
    utsname u{};
    if (::uname(&u) == 0) line("os", std::string(u.sysname) + " " + u.release + " " + u.machine);
    line("arch_bits", "64");
    line("multiplexing_api", "epoll");
    line("process_id", static_cast<long long>(::getpid()));
    line("tcp_port", static_cast<long long>(port_));
    line("uptime_in_seconds", static_cast<long long>((now - started_ms) / 1000));
    line("warp_node_id", static_cast<long long>(node_.id()));
    out += "\r\n";
  }
  std::size_t tracking = 0, pubsub_clients = 0;
  for (auto& [id, c] : clients_) {
    if (c->tracking) ++tracking;
    if (c->subscriptions()) ++pubsub_clients;
  }
  if (wanted("clients")) {
    out += "# Clients\r\n";
    line("connected_clients", clients_.size());
    line("maxclients", options_.max_clients);
    line("pubsub_clients", pubsub_clients);
    line("tracking_clients", tracking);
    line("blocked_clients", 0);
    out += "\r\n";
  }
  if (wanted("memory")) {
    // The storage adapter's own accounting (memory storage; 0 for SQLite/PostgreSQL, whose
    // data lives elsewhere), as Redis reports its dataset.
    auto mem = node_.storage().memory();
    out += "# Memory\r\n";
    line("used_memory", mem.used_bytes);
    line("maxmemory", mem.max_bytes);
    line("maxmemory_policy", std::string(mem.policy));
    line("evicted_keys", mem.evicted_keys);
    line("mem_clients_normal", client_memory());
    line("maxmemory_clients", options_.max_client_memory);
    out += "\r\n";
  }
  if (wanted("persistence")) {
    out += "# Persistence\r\n";
    line("loading", 0);  // ioredis waits for loading:0 before it reports ready
    out += "\r\n";
  }
  if (wanted("stats")) {
    auto st = node_.stats();
    out += "# Stats\r\n";
    line("total_connections_received", total_connections);
    line("total_commands_processed", total_commands);
    line("rejected_connections", rejected_connections);
    line("keyspace_hits", keyspace_hits);
    line("keyspace_misses", keyspace_misses);
    line("pubsub_channels", channels_.size());
    line("pubsub_patterns", patterns_.size());
    line("tracking_total_keys", tracked_.size());
    line("total_error_replies_protocol", protocol_errors);
    line("client_output_buffer_limit_disconnections", output_limit_disconnects);
    line("client_idle_disconnections", idle_disconnects);
    line("evicted_clients", client_memory_disconnects.load(std::memory_order_relaxed));
    line("auth_failures", auth_failures.load(std::memory_order_relaxed));
    line("strong_pipelined_commands", strong_run_commands_);
    line("strong_pipelined_runs", strong_runs_);
    line("l1_hits", st.l1.hits);
    line("l1_misses", st.l1.misses);
    line("l1_entries", st.l1.entries);
    line("storage_fetches", st.storage_fetches);
    line("storage_writes", st.storage_writes);
    out += "\r\n";
  }
  if (wanted("replication")) {
    out += "# Replication\r\nrole:master\r\nconnected_slaves:0\r\n\r\n";
  }
  if (wanted("keyspace")) {
    out += "# Keyspace\r\n";
    auto count = node_.key_count();
    if (count && *count > 0) line("db0", "keys=" + std::to_string(*count) + ",expires=0,avg_ttl=0");
    out += "\r\n";
  }
  return out;
}

namespace {

struct incr_rmw final : rmw_step {
  std::string key;  // incr_step views it
  incr_step step;
  incr_rmw(std::string_view k, std::int64_t delta) : key(k), step{key, delta} {}
  result<mutation> operator()(const buffer* cur, std::int64_t cur_exp) override {
    return step(cur, cur_exp);
  }
  void reply(resp_writer& w, const result<void>& st) const override { step.reply(w, st); }
};

}  // namespace

std::unique_ptr<rmw_step> make_rmw_step(std::span<const std::string_view> args, resp_writer& w,
                                        bool& failed) {
  failed = false;
  const auto name = args[0];
  const auto n = args.size();
  auto is = [&](std::string_view lower_name) { return iequals(name, lower_name); };
  auto bad = [&](std::string_view msg) -> std::unique_ptr<rmw_step> {
    w.error(msg);
    failed = true;
    return nullptr;
  };
  if (n == 2 && (is("incr") || is("decr")))
    return std::make_unique<incr_rmw>(args[1], is("incr") ? 1 : -1);
  if (n == 3 && (is("incrby") || is("decrby"))) {
    std::int64_t d = 0;
    if (!parse_int64(args[2], d)) return bad(not_int);
    if (is("decrby")) {
      if (d == std::numeric_limits<std::int64_t>::min()) return bad("ERR decrement would overflow");
      d = -d;
    }
    return std::make_unique<incr_rmw>(args[1], d);
  }
  if (n == 3 && is("setnx")) return std::make_unique<setnx_step>(args[2]);
  if (n == 3 && is("getset")) return std::make_unique<getset_step>(args[2]);
  if (n == 2 && is("getdel")) return std::make_unique<getdel_step>();
  if (n == 3 && is("append")) return std::make_unique<append_step>(args[2]);
  if (n == 2 && (is("del") || is("unlink"))) return std::make_unique<del_step>();
  if (n >= 3 && is("set")) {
    set_options o;
    if (!parse_set(args, w, o)) {
      failed = true;
      return nullptr;
    }
    if (o.lease != 0) return nullptr;  // waits on the coordination group: a worker's
    return std::make_unique<set_step>(args[2], o);
  }
  return nullptr;
}

// The renderings the strong pipeline (strong_pipeline.cpp) shares with the handlers above,
// so a command answers the same bytes whichever path ran it.
void reply_get_outcome(resp_writer& w, const result<buffer>& r) {
  if (r)
    reply_stored(w, view(*r), false);
  else if (r.code() == errc::not_found)
    w.null();
  else
    reply_error(w, r.err());
}

void reply_failure(resp_writer& w, const error& e) {
  reply_error(w, e);
}

}  // namespace warp::sidecar::detail
