#include "federation/cdc_ingest.hpp"

#include <nlohmann/json.hpp>

#include "bus/kafka_envelope.hpp"
#include "runtime/core/log.hpp"

namespace warp::federation {

namespace {

error malformed(std::string_view why) {
  return error{errc::codec_error, std::string{"malformed CDC event: "}.append(why)};
}

}  // namespace

result<cdc_mode> parse_cdc_mode(std::string_view text) {
  if (text == "invalidate") return cdc_mode::invalidate;
  if (text == "hydrate") return cdc_mode::hydrate;
  return error{errc::invalid_argument, "cdc-mode must be invalidate or hydrate, not '" +
                                           std::string{text.substr(0, 64)} + "'"};
}

result<key_template> key_template::parse(std::string_view text) {
  if (text.empty()) return error{errc::invalid_argument, "cdc-key: empty template"};
  if (text.size() > 1024) return error{errc::invalid_argument, "cdc-key: template over 1024 bytes"};
  key_template t;
  std::string lit;
  for (std::size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '{' && i + 1 < text.size() && text[i + 1] == '{') {
      lit += '{';
      ++i;
    } else if (c == '}' && i + 1 < text.size() && text[i + 1] == '}') {
      lit += '}';
      ++i;
    } else if (c == '{') {
      auto close = text.find('}', i + 1);
      if (close == std::string_view::npos)
        return error{errc::invalid_argument,
                     "cdc-key: '{' without '}' in '" + std::string{text} + "'"};
      auto col = text.substr(i + 1, close - i - 1);
      if (col.empty() || col.find('{') != std::string_view::npos)
        return error{errc::invalid_argument,
                     "cdc-key: bad column name in '" + std::string{text} + "'"};
      t.parts_.push_back(std::move(lit));
      lit.clear();
      t.columns_.emplace_back(col);
      i = close;
    } else if (c == '}') {
      return error{errc::invalid_argument,
                   "cdc-key: stray '}' in '" + std::string{text} + "' (use }})"};
    } else {
      lit += c;
    }
  }
  t.parts_.push_back(std::move(lit));
  if (t.columns_.empty())
    return error{errc::invalid_argument,
                 "cdc-key: '" + std::string{text} + "' names no column (e.g. user:{id})"};
  return t;
}

result<std::string> key_template::render(const nlohmann::json& row) const {
  if (!row.is_object()) return malformed("row is not an object");
  std::string key = parts_[0];
  for (std::size_t i = 0; i < columns_.size(); ++i) {
    auto it = row.find(columns_[i]);
    if (it == row.end() || it->is_null())
      return malformed("key column '" + columns_[i] + "' missing");
    if (it->is_string())
      key += it->get_ref<const std::string&>();
    else if (it->is_number_integer())
      key += it->dump();
    else
      return malformed("key column '" + columns_[i] + "' is neither a string nor an integer");
    key += parts_[i + 1];
  }
  return key;
}

result<std::vector<cdc_action>> plan_cdc(std::string_view event, const key_template& tmpl,
                                         cdc_mode mode, const cdc_limits& limits) {
  std::vector<cdc_action> out;
  if (event.empty()) return out;  // tombstone
  if (event.size() > limits.max_event_bytes) return malformed("over the size bound");
  if (bus::json_depth(event, limits.max_json_depth) > limits.max_json_depth)
    return malformed("nested too deep");
  auto doc = nlohmann::json::parse(event.begin(), event.end(), nullptr, false);
  if (doc.is_discarded()) return malformed("not JSON");
  if (doc.is_null()) return out;  // a JSON null value: tombstone too
  if (!doc.is_object()) return malformed("not an object");
  const nlohmann::json* payload = &doc;
  if (auto p = doc.find("payload"); p != doc.end()) {
    if (p->is_null()) return out;
    payload = &*p;
  }
  if (!payload->is_object()) return malformed("payload is not an object");
  auto op_it = payload->find("op");
  if (op_it == payload->end() || !op_it->is_string()) return malformed("payload.op missing");
  const auto& op = op_it->get_ref<const std::string&>();
  auto row = [&](const char* which) -> const nlohmann::json* {
    auto it = payload->find(which);
    return it == payload->end() || it->is_null() ? nullptr : &*it;
  };
  auto key_of = [&](const nlohmann::json& r) -> result<std::string> {
    auto k = tmpl.render(r);
    if (k && k->size() > limits.max_key_bytes) return malformed("cache key over the size bound");
    if (k && k->empty()) return malformed("empty cache key");
    return k;
  };
  if (op == "d") {
    auto* before = row("before");
    if (!before) return malformed("delete without payload.before");
    auto k = key_of(*before);
    if (!k) return k.err();
    out.push_back({cdc_action::kind::invalidate, std::move(*k), {}});
    return out;
  }
  if (op != "c" && op != "u" && op != "r")
    return malformed("payload.op '" + op.substr(0, 8) + "' unknown");
  auto* after = row("after");
  if (!after) return malformed("payload.after missing for op " + op);
  auto k = key_of(*after);
  if (!k) return k.err();
  // Key columns changed: the old key's row is gone.
  if (auto* before = row("before"); before && op == "u") {
    auto old = key_of(*before);
    if (old && *old != *k) out.push_back({cdc_action::kind::invalidate, std::move(*old), {}});
  }
  if (mode == cdc_mode::hydrate)
    out.push_back({cdc_action::kind::hydrate, std::move(*k), after->dump()});
  else
    out.push_back({cdc_action::kind::invalidate, std::move(*k), {}});
  return out;
}

result<std::unique_ptr<cdc_ingest>> cdc_ingest::start(cdc_config cfg, cdc_target& target) {
  if (cfg.brokers.empty() || cfg.topic.empty())
    return error{errc::invalid_argument, "cdc: --cdc-brokers and --cdc-topic are required"};
  auto tmpl = key_template::parse(cfg.key_template);
  if (!tmpl) return tmpl.err();
  std::unique_ptr<cdc_ingest> in{new cdc_ingest()};
  in->cfg_ = std::move(cfg);
  auto* self = in.get();
  bus::kafka_consumer_config kc;
  kc.brokers = self->cfg_.brokers;
  kc.group = self->cfg_.group;
  kc.topics = {self->cfg_.topic};
  kc.commit_interval = self->cfg_.commit_interval;
  kc.properties = self->cfg_.properties;
  auto apply = [self, &target, t = std::move(*tmpl)](const bus::kafka_record& r) -> result<void> {
    auto plan = plan_cdc(r.payload, t, self->cfg_.mode);
    if (!plan) {
      // Never applies, so never retried: counted, logged, and its offset committed.
      self->counters_.malformed.fetch_add(1, std::memory_order_relaxed);
      warp::detail::log()->warn("cdc: {}[{}]@{} skipped: {}", r.topic, r.partition, r.offset,
                                plan.err().message());
      return {};
    }
    if (plan->empty()) self->counters_.tombstones.fetch_add(1, std::memory_order_relaxed);
    for (auto& a : *plan) {
      if (a.what == cdc_action::kind::hydrate) {
        if (auto ok = target.hydrate(a.key, a.value); !ok) return ok.err();
        self->counters_.hydrated.fetch_add(1, std::memory_order_relaxed);
      } else {
        if (auto ok = target.invalidate(a.key); !ok) return ok.err();
        self->counters_.invalidated.fetch_add(1, std::memory_order_relaxed);
      }
    }
    return {};
  };
  auto consumer = bus::kafka_consumer::open(std::move(kc), std::move(apply));
  if (!consumer) return consumer.err();
  in->consumer_ = std::move(*consumer);
  return in;
}

cdc_ingest::~cdc_ingest() {
  consumer_.reset();  // stops the thread that calls into counters_ and the target
}

std::string cdc_ingest::prometheus_text(std::string_view labels) const {
  std::string out = bus::prometheus_text(consumer(), bus::kafka_side::consumer, "warp_cdc", labels);
  auto family = [&](std::string_view name, std::string_view help, std::uint64_t v) {
    out.append("# HELP ").append(name).append(" ").append(help).append("\n");
    out.append("# TYPE ").append(name).append(" counter\n");
    out.append(name).append(labels).append(" ").append(std::to_string(v)).append("\n");
  };
  auto ld = [](const std::atomic<std::uint64_t>& a) { return a.load(std::memory_order_relaxed); };
  family("warp_cdc_malformed_total", "CDC events skipped as malformed", ld(counters_.malformed));
  family("warp_cdc_tombstones_total", "Kafka tombstones skipped", ld(counters_.tombstones));
  family("warp_cdc_invalidated_total", "Keys invalidated by CDC events", ld(counters_.invalidated));
  family("warp_cdc_hydrated_total", "Keys hydrated by CDC events", ld(counters_.hydrated));
  return out;
}

}  // namespace warp::federation
