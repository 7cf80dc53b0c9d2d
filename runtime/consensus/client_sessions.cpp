#include "runtime/consensus/client_sessions.hpp"

#include <algorithm>

namespace warp::consensus {

std::optional<result<std::string>> client_sessions::replay(std::uint64_t client,
                                                           std::uint64_t seq, index_t index) {
  if (client == 0) return std::nullopt;
  auto it = sessions_.find(client);
  if (it == sessions_.end() || seq > it->second.seq) return std::nullopt;
  if (seq < it->second.seq)
    return result<std::string>{
        error{errc::invalid_argument, "sequence below the client's last applied one"}};
  auto& s = it->second;
  ++deduplicated_;
  s.last_used = index;
  if (!s.replayable)
    return result<std::string>{
        error{errc::unknown_outcome, "applied before; its answer was too large to keep"}};
  if (s.code != errc::ok) return result<std::string>{error{s.code, s.answer}};
  return result<std::string>{s.answer};
}

void client_sessions::record(std::uint64_t client, std::uint64_t seq, index_t index,
                             const result<std::string>& answer) {
  if (client == 0) return;
  if (!sessions_.contains(client) && sessions_.size() >= max_sessions_) {
    auto oldest = std::min_element(sessions_.begin(), sessions_.end(), [](auto& a, auto& b) {
      return a.second.last_used < b.second.last_used;
    });
    sessions_.erase(oldest);
  }
  session s;
  s.seq = seq;
  s.code = answer.code();
  s.last_used = index;
  const std::string& text = answer ? *answer : answer.err().message();
  if (text.size() <= max_answer_bytes_)
    s.answer = text;
  else
    s.replayable = false;
  sessions_[client] = std::move(s);
}

void client_sessions::snapshot(std::string& out) const {
  put_u64(out, sessions_.size());
  for (auto& [client, s] : sessions_) {
    put_u64(out, client);
    put_u64(out, s.seq);
    put_u8(out, static_cast<std::uint8_t>(s.code));
    put_u8(out, s.replayable ? 1 : 0);
    put_str(out, s.answer);
    put_u64(out, s.last_used);
  }
}

bool client_sessions::restore(byte_reader& in) {
  decltype(sessions_) next;
  auto n = in.count(max_sessions_);
  for (std::uint64_t i = 0; in.ok && i < n; ++i) {
    auto client = in.u64();
    session s;
    s.seq = in.u64();
    s.code = static_cast<errc>(in.u8());
    auto replayable = in.u8();
    s.answer = in.str(max_answer_bytes_);
    s.last_used = in.u64();
    if (replayable > 1) in.fail();
    s.replayable = replayable == 1;
    if (in.ok) next[client] = std::move(s);
  }
  if (!in.ok) return false;
  sessions_ = std::move(next);
  return true;
}

}  // namespace warp::consensus
