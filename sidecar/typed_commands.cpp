// Helpers shared by the typed commands (typed_commands.hpp).
#include "sidecar/typed_commands.hpp"

#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

namespace warp::sidecar::detail {

bool iequals(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

void reply_write_error(resp_writer& w, const error& e) {
  if (e.code() == errc::value_too_large)
    return w.error(
        "ERR the key's encoded value would exceed the maximum value size (limits.max_value_size)");
  reply_node_error(w, e);
}

bool parse_score(std::string_view text, double& out) {
  // strtod needs a terminated string; arguments are bounded by the parser's limits.
  if (text.empty() || text.size() > 4096 || std::isspace(static_cast<unsigned char>(text[0])))
    return false;
  std::string s(text);
  errno = 0;
  char* end = nullptr;
  double v = std::strtod(s.c_str(), &end);
  if (static_cast<std::size_t>(end - s.c_str()) != s.size()) return false;
  if (errno == ERANGE && (v == HUGE_VAL || v == -HUGE_VAL || v == 0)) return false;
  if (std::isnan(v)) return false;
  out = v;
  return true;
}

bool int_arg(context& ctx, std::size_t i, std::int64_t& out) {
  if (parse_int64(ctx.args[i], out)) return true;
  ctx.w.error(not_integer);
  return false;
}

void run_typed_write(context& ctx, typed_write& s) {
  auto r = ctx.n.update(s.key, [&s](const buffer* cur, std::int64_t exp) { return s(cur, exp); });
  s.reply(ctx.w, r ? result<void>{} : result<void>{r.err()});
}

std::unique_ptr<typed_write> make_typed_write(std::span<const std::string_view> args) {
  if (args.size() < 2) return nullptr;
  // The batch outlives the span (the server reuses it for the next command); the bytes
  // the views point at stay in the client's input buffer until the batch has run. A
  // moved vector keeps its elements where they are, so the write's span stays valid.
  std::vector<std::string_view> own(args.begin(), args.end());
  auto w = make_list_write(own);
  if (!w) w = make_zset_write(own);
  if (w) w->owned_args = std::move(own);
  return w;
}

void run_typed_batch(node& n, resp_writer& w, std::span<const std::unique_ptr<typed_write>> batch) {
  using fn_type = std::function<result<mutation>(const buffer*, std::int64_t)>;
  // One pointer captured: each function fits std::function's inline storage (no malloc).
  std::vector<fn_type> fns;
  std::vector<node::update_item> items;
  std::vector<result<void>> out(batch.size());
  fns.reserve(batch.size());
  items.reserve(batch.size());
  for (const auto& s : batch)
    fns.emplace_back([p = s.get()](const buffer* cur, std::int64_t exp) { return (*p)(cur, exp); });
  for (std::size_t i = 0; i < batch.size(); ++i) items.push_back({batch[i]->key, &fns[i]});
  n.update_many(items, out);
  for (std::size_t i = 0; i < batch.size(); ++i) batch[i]->reply(w, out[i]);
}

void cmd_blocking(context& ctx) {
  ctx.w.error("ERR blocking command '" + std::string(ctx.args[0].substr(0, 32)) +
              "' is not supported by the Warp sidecar yet; poll with its non-blocking form "
              "(LPOP, RPOP, ZPOPMIN, ZPOPMAX)");
}

}  // namespace warp::sidecar::detail
