#include "federation/kafka_link.hpp"

#include <algorithm>
#include <utility>

#include "merge/policy.hpp"

namespace warp::federation {

std::string kafka_topic(std::string_view prefix, std::string_view from, std::string_view to) {
  std::string t{prefix};
  t.append(from).push_back('.');
  t.append(to);
  return t;
}

bus::kafka_change to_kafka(const change& c, std::int64_t now_ms) {
  bus::kafka_change k;
  k.op = c.what == change::op::erase ? bus::kafka_op::remove : bus::kafka_op::update;
  k.key = c.key;
  k.has_value = c.what == change::op::put;
  if (k.has_value) k.value = c.value;
  k.ver = c.ver;
  k.origin = c.origin;
  k.path = c.path;
  k.ts_ms = now_ms;
  // An expiry already past still travels as one (1 ms): 0 would mean "never expires".
  if (c.expires_at_ms > 0) k.ttl_ms = std::max<std::int64_t>(1, c.expires_at_ms - now_ms);
  if (c.policy != merge::policy_lww) k.policy = c.policy;
  return k;
}

result<change> from_kafka(bus::kafka_change k) {
  change c;
  switch (k.op) {
    case bus::kafka_op::remove:
      c.what = change::op::erase;
      break;
    case bus::kafka_op::create:
    case bus::kafka_op::update:
    case bus::kafka_op::repair:
      if (!k.has_value) return error{errc::codec_error, "kafka change: a put without a value"};
      c.what = change::op::put;
      c.value = std::move(k.value);
      break;
  }
  if (k.origin.empty()) return error{errc::codec_error, "kafka change: no origin"};
  c.key = std::move(k.key);
  c.ver = k.ver;
  c.expires_at_ms = k.ttl_ms > 0 ? k.ts_ms + k.ttl_ms : 0;
  c.origin = std::move(k.origin);
  c.path = std::move(k.path);
  if (c.path.empty()) c.path.push_back(c.origin);
  c.policy = k.policy.empty() ? std::string{merge::policy_lww} : std::move(k.policy);
  return c;
}

bus::kafka_format sniff_format(std::string_view payload) noexcept {
  return !payload.empty() && payload.front() == '{' ? bus::kafka_format::json
                                                    : bus::kafka_format::msgpack;
}

}  // namespace warp::federation
