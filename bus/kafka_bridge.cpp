#include "bus/kafka_bridge.hpp"

#include <librdkafka/rdkafka.h>

#include <algorithm>
#include <condition_variable>
#include <cstdlib>
#include <map>
#include <mutex>
#include <thread>

#include "runtime/core/log.hpp"

namespace warp::bus {

namespace {

using clock_type = std::chrono::steady_clock;

result<void> set(rd_kafka_conf_t* conf, const std::string& name, const std::string& value) {
  char err[512];
  if (rd_kafka_conf_set(conf, name.c_str(), value.c_str(), err, sizeof err) != RD_KAFKA_CONF_OK)
    return error{errc::invalid_argument, "kafka property " + name + ": " + err};
  return {};
}

// A broker outage makes librdkafka report the same error many times a second: log the first
// and then at most one line per 5 s per client, but count every one.
struct error_log {
  std::mutex mu;
  clock_type::time_point last{};
  std::uint64_t suppressed = 0;
  void report(std::string_view who, const char* what, kafka_counters& c) {
    c.broker_errors.fetch_add(1, std::memory_order_relaxed);
    std::lock_guard lock{mu};
    auto now = clock_type::now();
    if (last != clock_type::time_point{} && now - last < std::chrono::seconds{5}) {
      ++suppressed;
      return;
    }
    warp::detail::log()->warn("kafka {}: {} (librdkafka retries; {} similar suppressed)", who, what,
                              suppressed);
    last = now;
    suppressed = 0;
  }
};

void sleep_interruptible(const std::atomic<bool>& stop, std::chrono::milliseconds d) {
  auto until = clock_type::now() + d;
  while (!stop.load() && clock_type::now() < until)
    std::this_thread::sleep_for(std::chrono::milliseconds{10});
}

}  // namespace

std::string prometheus_text(const kafka_counters& c, kafka_side side, std::string_view prefix,
                            std::string_view labels) {
  std::string out;
  auto family = [&](std::string_view name, std::string_view type, std::string_view help,
                    std::uint64_t v) {
    std::string full{prefix};
    full.append(name);
    out.append("# HELP ").append(full).append(" ").append(help).append("\n");
    out.append("# TYPE ").append(full).append(" ").append(type).append("\n");
    out.append(full).append(labels).append(" ").append(std::to_string(v)).append("\n");
  };
  auto ld = [](const std::atomic<std::uint64_t>& a) { return a.load(std::memory_order_relaxed); };
  if (side == kafka_side::producer) {
    family("_produced_total", "counter", "Records handed to librdkafka", ld(c.produced));
    family("_delivered_total", "counter", "Records acknowledged by the brokers (acks=all)",
           ld(c.delivered));
    family("_failed_total", "counter", "Records whose delivery failed after retries", ld(c.failed));
    family("_rejected_total", "counter", "Publishes refused: in-flight queue full", ld(c.rejected));
    auto in_flight = c.in_flight.load(std::memory_order_relaxed);
    family("_in_flight", "gauge", "Records not yet acknowledged",
           in_flight > 0 ? static_cast<std::uint64_t>(in_flight) : 0);
  } else {
    family("_consumed_total", "counter", "Records read from Kafka", ld(c.consumed));
    family("_applied_total", "counter", "Records applied (or skipped by the apply callback)",
           ld(c.applied));
    family("_apply_errors_total", "counter", "Applies that failed and were retried",
           ld(c.apply_errors));
    family("_commits_total", "counter", "Successful offset commits", ld(c.committed));
    family("_commit_lag_records", "gauge",
           "Records between the committed offsets and the partition ends", ld(c.commit_lag));
  }
  family("_broker_errors_total", "counter", "librdkafka errors (broker down, ...)",
         ld(c.broker_errors));
  return out;
}

// -- producer -----------------------------------------------------------------------------

struct kafka_producer::impl {
  std::shared_ptr<kafka_counters> counters;
  ack_fn on_ack;
  std::size_t max_in_flight = 0;
  rd_kafka_t* rk = nullptr;
  rd_kafka_topic_t* rkt = nullptr;
  std::atomic<bool> stop{false};
  std::thread poller;
  error_log errors;

  ~impl() {
    stop = true;
    if (poller.joinable()) poller.join();
    if (rkt) rd_kafka_topic_destroy(rkt);
    if (rk) rd_kafka_destroy(rk);
  }

  static void on_delivery(rd_kafka_t*, const rd_kafka_message_t* m, void* opaque) {
    auto* self = static_cast<impl*>(opaque);
    auto& c = *self->counters;
    c.in_flight.fetch_sub(1, std::memory_order_relaxed);
    result<void> outcome{};
    if (m->err) {
      c.failed.fetch_add(1, std::memory_order_relaxed);
      outcome = error{errc::unreachable,
                      std::string{"kafka delivery failed: "} + rd_kafka_err2str(m->err)};
      self->errors.report("producer", rd_kafka_err2str(m->err), c);
    } else {
      c.delivered.fetch_add(1, std::memory_order_relaxed);
    }
    if (self->on_ack)
      self->on_ack(std::string_view{static_cast<const char*>(m->key), m->key_len}, outcome);
  }

  static void on_error(rd_kafka_t* rk, int err, const char* reason, void* opaque) {
    auto* self = static_cast<impl*>(opaque);
    if (err == RD_KAFKA_RESP_ERR__FATAL) {
      char buf[512];
      rd_kafka_fatal_error(rk, buf, sizeof buf);
      warp::detail::log()->error("kafka producer: fatal: {}", buf);
    }
    self->errors.report("producer", reason, *self->counters);
  }
};

kafka_producer::kafka_producer(kafka_producer_config cfg)
    : cfg_(std::move(cfg)), counters_(std::make_shared<kafka_counters>()) {}

kafka_producer::~kafka_producer() {
  if (impl_ && impl_->rk) (void)flush(std::chrono::seconds{5});
}

result<std::unique_ptr<kafka_producer>> kafka_producer::open(kafka_producer_config cfg,
                                                             ack_fn on_ack) {
  if (cfg.brokers.empty() || cfg.topic.empty())
    return error{errc::invalid_argument, "kafka producer: brokers and topic are required"};
  if (cfg.max_in_flight == 0)
    return error{errc::invalid_argument, "kafka producer: max_in_flight must be > 0"};
  std::unique_ptr<kafka_producer> p{new kafka_producer(std::move(cfg))};
  auto st = std::make_unique<impl>();
  st->counters = p->counters_;
  st->on_ack = std::move(on_ack);
  st->max_in_flight = p->cfg_.max_in_flight;
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  std::vector<std::pair<std::string, std::string>> props{
      {"bootstrap.servers", p->cfg_.brokers},
      {"enable.idempotence", "true"},
      {"acks", "all"},
      {"linger.ms", std::to_string(p->cfg_.linger.count())},
      // librdkafka's own queue is larger than ours, so our bound is the one that refuses.
      {"queue.buffering.max.messages",
       std::to_string(std::min<std::size_t>(p->cfg_.max_in_flight + 1000, 10'000'000))},
      {"log_level", "2"}};
  props.insert(props.end(), p->cfg_.properties.begin(), p->cfg_.properties.end());
  for (auto& [k, v] : props) {
    if (auto ok = set(conf, k, v); !ok) {
      rd_kafka_conf_destroy(conf);
      return ok.err();
    }
  }
  rd_kafka_conf_set_opaque(conf, st.get());
  rd_kafka_conf_set_dr_msg_cb(conf, &impl::on_delivery);
  rd_kafka_conf_set_error_cb(conf, &impl::on_error);
  char err[512];
  st->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
  if (!st->rk) {
    rd_kafka_conf_destroy(conf);
    return error{errc::invalid_argument, std::string{"kafka producer: "} + err};
  }
  st->rkt = rd_kafka_topic_new(st->rk, p->cfg_.topic.c_str(), nullptr);
  if (!st->rkt)
    return error{errc::invalid_argument,
                 std::string{"kafka producer: topic: "} + rd_kafka_err2str(rd_kafka_last_error())};
  auto* raw = st.get();
  st->poller = std::thread{[raw] {
    while (!raw->stop.load()) rd_kafka_poll(raw->rk, 50);
    rd_kafka_poll(raw->rk, 0);
  }};
  p->impl_ = std::move(st);
  return p;
}

result<void> kafka_producer::publish(std::string_view key, std::string_view payload) {
  auto& c = *counters_;
  if (c.in_flight.load(std::memory_order_relaxed) >=
      static_cast<std::int64_t>(impl_->max_in_flight)) {
    c.rejected.fetch_add(1, std::memory_order_relaxed);
    return error{errc::rate_limited, "kafka producer: in-flight queue full (" +
                                         std::to_string(impl_->max_in_flight) + " records)"};
  }
  c.in_flight.fetch_add(1, std::memory_order_relaxed);
  int rc = rd_kafka_produce(impl_->rkt, RD_KAFKA_PARTITION_UA, RD_KAFKA_MSG_F_COPY,
                            const_cast<char*>(payload.data()), payload.size(), key.data(),
                            key.size(), nullptr);
  if (rc != 0) {
    c.in_flight.fetch_sub(1, std::memory_order_relaxed);
    auto e = rd_kafka_last_error();
    if (e == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
      c.rejected.fetch_add(1, std::memory_order_relaxed);
      return error{errc::rate_limited, "kafka producer: librdkafka queue full"};
    }
    c.failed.fetch_add(1, std::memory_order_relaxed);
    return error{errc::invalid_argument, std::string{"kafka produce: "} + rd_kafka_err2str(e)};
  }
  c.produced.fetch_add(1, std::memory_order_relaxed);
  return {};
}

result<void> kafka_producer::flush(std::chrono::milliseconds timeout) {
  // Delivery reports stay on the poll thread: wait for them rather than calling
  // rd_kafka_flush, which would run callbacks here too.
  auto until = clock_type::now() + timeout;
  while (counters_->in_flight.load() > 0) {
    if (clock_type::now() >= until)
      return error{errc::timeout, "kafka producer: " + std::to_string(counters_->in_flight.load()) +
                                      " records not acknowledged in time"};
    std::this_thread::sleep_for(std::chrono::microseconds{200});
  }
  return {};
}

// -- consumer -----------------------------------------------------------------------------

struct kafka_consumer::impl {
  kafka_consumer_config cfg;
  std::shared_ptr<kafka_counters> counters;
  apply_fn apply;
  apply_batch_fn apply_batch;                // instead of apply (open_batched)
  std::vector<rd_kafka_message_t*> fetched;  // the batch being gathered
  std::uint64_t rebalances = 0;
  rd_kafka_t* rk = nullptr;
  std::atomic<bool> stop{false};
  std::thread worker;
  error_log errors;
  // Next offset to commit per (topic, partition): only the consumer thread touches these.
  std::map<std::pair<std::string, std::int32_t>, std::int64_t> pending, committed, unconfirmed;
  rd_kafka_queue_t* consumer_queue = nullptr;  // async commit outcomes arrive here
  clock_type::time_point last_commit = clock_type::now();
  clock_type::time_point last_lag = clock_type::now();
  bool skip_commit = false;  // closing without commit (crash simulation)
  // commit() from other threads: a request number and the outcome of the last one done.
  std::mutex mu;
  std::condition_variable cv;
  std::uint64_t commit_requested = 0, commit_done = 0;
  result<void> last_commit_outcome{};

  ~impl() {
    stop = true;
    if (worker.joinable()) worker.join();
    if (consumer_queue) rd_kafka_queue_destroy(consumer_queue);
    if (rk) rd_kafka_destroy(rk);
  }

  // Periodic commits are asynchronous, so a slow coordinator never stalls applying (their
  // outcome arrives in on_commit, on this thread); commits on close, on revocation and on
  // request are synchronous. Either way only offsets of applied records are committed.
  result<void> commit_pending(bool sync = true) {
    if (skip_commit) return {};
    if (sync) {
      // Async commits whose outcome has not come back are committed again here: a member
      // taking the partitions must see them, or it re-applies what this one applied.
      for (auto& [tp, off] : unconfirmed) {
        auto& p = pending[tp];
        p = std::max(p, off);
      }
      unconfirmed.clear();
    }
    if (pending.empty()) return {};
    rd_kafka_topic_partition_list_t* list =
        rd_kafka_topic_partition_list_new(static_cast<int>(pending.size()));
    for (auto& [tp, off] : pending)
      rd_kafka_topic_partition_list_add(list, tp.first.c_str(), tp.second)->offset = off;
    // Async: the outcome goes to on_commit through the consumer queue this thread polls.
    auto e = sync ? rd_kafka_commit(rk, list, 0)
                  : rd_kafka_commit_queue(rk, list, consumer_queue, &impl::on_commit, this);
    rd_kafka_topic_partition_list_destroy(list);
    last_commit = clock_type::now();
    if (e && e != RD_KAFKA_RESP_ERR__NO_OFFSET) {
      errors.report("consumer", rd_kafka_err2str(e), *counters);
      return error{errc::unreachable, std::string{"kafka commit: "} + rd_kafka_err2str(e)};
    }
    if (sync) {
      counters->committed.fetch_add(1, std::memory_order_relaxed);
      for (auto& [tp, off] : pending) committed[tp] = std::max(committed[tp], off);
      update_lag();
    } else {
      for (auto& [tp, off] : pending) unconfirmed[tp] = std::max(unconfirmed[tp], off);
    }
    pending.clear();
    return {};
  }

  static void on_commit(rd_kafka_t*, rd_kafka_resp_err_t err,
                        rd_kafka_topic_partition_list_t* offsets, void* opaque) {
    auto* self = static_cast<impl*>(opaque);
    if (!offsets) return;
    if (err == RD_KAFKA_RESP_ERR__NO_OFFSET) return;
    if (err) self->errors.report("consumer commit", rd_kafka_err2str(err), *self->counters);
    bool all_ok = !err;
    for (int i = 0; i < offsets->cnt; ++i) {
      auto& tp = offsets->elems[i];
      std::pair<std::string, std::int32_t> key{tp.topic, tp.partition};
      if (!err && !tp.err) {
        auto& c = self->committed[key];
        c = std::max(c, tp.offset);
        if (auto u = self->unconfirmed.find(key); u != self->unconfirmed.end() && u->second <= c)
          self->unconfirmed.erase(u);
      } else {
        all_ok = false;
        // Committed again with the next commit, even if no record arrives meanwhile.
        auto& p = self->pending[key];
        p = std::max(p, tp.offset);
        self->unconfirmed.erase(key);
      }
    }
    if (all_ok) self->counters->committed.fetch_add(1, std::memory_order_relaxed);
  }

  // Records between what is committed and the partition ends librdkafka last saw (cached
  // watermarks: no network call).
  void update_lag() {
    last_lag = clock_type::now();
    rd_kafka_topic_partition_list_t* assigned = nullptr;
    if (rd_kafka_assignment(rk, &assigned) || !assigned) return;
    std::uint64_t lag = 0;
    for (int i = 0; i < assigned->cnt; ++i) {
      auto& tp = assigned->elems[i];
      std::int64_t lo = 0, hi = 0;
      if (rd_kafka_get_watermark_offsets(rk, tp.topic, tp.partition, &lo, &hi)) continue;
      if (hi < 0) continue;
      auto it = committed.find({tp.topic, tp.partition});
      auto base = it != committed.end() ? it->second : lo;
      if (hi > base) lag += static_cast<std::uint64_t>(hi - base);
    }
    rd_kafka_topic_partition_list_destroy(assigned);
    counters->commit_lag.store(lag, std::memory_order_relaxed);
  }

  static void on_error(rd_kafka_t*, int, const char* reason, void* opaque) {
    auto* self = static_cast<impl*>(opaque);
    self->errors.report("consumer", reason, *self->counters);
  }

  static void on_rebalance(rd_kafka_t* rk, rd_kafka_resp_err_t err,
                           rd_kafka_topic_partition_list_t* parts, void* opaque) {
    auto* self = static_cast<impl*>(opaque);
    ++self->rebalances;
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
      rd_kafka_assign(rk, parts);
      return;
    }
    // Revoked: what was applied is committed before another member takes the partitions.
    (void)self->commit_pending();
    self->pending.clear();
    self->unconfirmed.clear();
    rd_kafka_assign(rk, nullptr);
  }

  void serve_commit_requests() {
    std::unique_lock lock{mu};
    if (commit_requested == commit_done) return;
    auto target = commit_requested;
    lock.unlock();
    auto outcome = commit_pending();
    lock.lock();
    last_commit_outcome = outcome;
    commit_done = target;
    cv.notify_all();
  }

  void run() {
    while (!stop.load()) {
      serve_commit_requests();
      if (apply_batch) {
        gather_and_apply();
      } else if (rd_kafka_message_t* m = rd_kafka_consumer_poll(rk, 50)) {
        handle(m);
      }
      auto now = clock_type::now();
      if (now - last_commit >= cfg.commit_interval) (void)commit_pending(false);
      if (now - last_lag >= std::chrono::seconds{1}) update_lag();
    }
    if (!cfg.commit_on_close) skip_commit = true;
    (void)commit_pending();
    rd_kafka_consumer_close(rk);
    std::lock_guard lock{mu};
    commit_done = commit_requested;
    last_commit_outcome = error{errc::shutting_down, "kafka consumer closed"};
    cv.notify_all();
  }

  void drop_fetched() {
    for (auto* m : fetched) rd_kafka_message_destroy(m);
    fetched.clear();
  }

  // Waits up to 50 ms for a first record, then takes what is already fetched without
  // waiting. A rebalance while gathering (served inside poll) may have revoked partitions
  // of records gathered before it: those are dropped unapplied and uncommitted, and come
  // again to whoever owns their partition now.
  void gather_and_apply() {
    auto epoch = rebalances;
    for (int timeout = 50; fetched.size() < std::max<std::size_t>(cfg.max_batch, 1); timeout = 0) {
      rd_kafka_message_t* m = rd_kafka_consumer_poll(rk, timeout);
      if (rebalances != epoch) {
        drop_fetched();
        epoch = rebalances;
      }
      if (!m) break;
      if (m->err) {
        if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
          errors.report("consumer", rd_kafka_message_errstr(m), *counters);
        rd_kafka_message_destroy(m);
        continue;
      }
      fetched.push_back(m);
    }
    if (fetched.empty()) return;
    std::vector<kafka_record> records;
    records.reserve(fetched.size());
    for (auto* m : fetched) {
      kafka_record& r = records.emplace_back();
      r.topic = rd_kafka_topic_name(m->rkt);
      r.partition = m->partition;
      r.offset = m->offset;
      r.key = {static_cast<const char*>(m->key), m->key ? m->key_len : 0};
      r.payload = {static_cast<const char*>(m->payload), m->payload ? m->len : 0};
    }
    counters->consumed.fetch_add(records.size(), std::memory_order_relaxed);
    auto ok = apply_batch(records);
    if (ok) {
      counters->applied.fetch_add(records.size(), std::memory_order_relaxed);
      for (const auto& r : records) {
        auto& next = pending[{std::string{r.topic}, r.partition}];
        next = std::max(next, r.offset + 1);
      }
    } else {
      counters->apply_errors.fetch_add(records.size(), std::memory_order_relaxed);
      warp::detail::log()->warn("kafka consumer: a batch of {} records not applied ({}); retrying",
                                records.size(), ok.err().to_string());
      // Each partition back to its first record of the batch: nothing after it is applied
      // (or committed) before the whole batch is.
      std::map<std::pair<std::string_view, std::int32_t>, std::int64_t> first;
      for (const auto& r : records) {
        auto [it, fresh] = first.try_emplace({r.topic, r.partition}, r.offset);
        if (!fresh) it->second = std::min(it->second, r.offset);
      }
      rd_kafka_topic_partition_list_t* list =
          rd_kafka_topic_partition_list_new(static_cast<int>(first.size()));
      for (const auto& [tp, offset] : first)
        rd_kafka_topic_partition_list_add(list, std::string{tp.first}.c_str(), tp.second)->offset =
            offset;
      if (auto* e = rd_kafka_seek_partitions(rk, list, 5000)) rd_kafka_error_destroy(e);
      rd_kafka_topic_partition_list_destroy(list);
      sleep_interruptible(stop, cfg.retry_backoff);
    }
    drop_fetched();
  }

  void handle(rd_kafka_message_t* m) {
    if (m->err) {
      if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
        errors.report("consumer", rd_kafka_message_errstr(m), *counters);
      rd_kafka_message_destroy(m);
      return;
    }
    counters->consumed.fetch_add(1, std::memory_order_relaxed);
    kafka_record r;
    r.topic = rd_kafka_topic_name(m->rkt);
    r.partition = m->partition;
    r.offset = m->offset;
    r.key = {static_cast<const char*>(m->key), m->key ? m->key_len : 0};
    r.payload = {static_cast<const char*>(m->payload), m->payload ? m->len : 0};
    auto ok = apply(r);
    if (ok) {
      counters->applied.fetch_add(1, std::memory_order_relaxed);
      pending[{std::string{r.topic}, r.partition}] = r.offset + 1;
    } else {
      counters->apply_errors.fetch_add(1, std::memory_order_relaxed);
      warp::detail::log()->warn("kafka consumer: {}[{}]@{} not applied ({}); retrying", r.topic,
                                r.partition, r.offset, ok.err().to_string());
      // Rewind the partition to this record: the fetch queue behind it is discarded and
      // refetched, so nothing after it is applied (or committed) before it.
      rd_kafka_topic_partition_list_t* list = rd_kafka_topic_partition_list_new(1);
      rd_kafka_topic_partition_list_add(list, rd_kafka_topic_name(m->rkt), m->partition)->offset =
          m->offset;
      if (auto* e = rd_kafka_seek_partitions(rk, list, 5000)) rd_kafka_error_destroy(e);
      rd_kafka_topic_partition_list_destroy(list);
      sleep_interruptible(stop, cfg.retry_backoff);
    }
    rd_kafka_message_destroy(m);
  }
};

kafka_consumer::~kafka_consumer() = default;

result<std::unique_ptr<kafka_consumer>> kafka_consumer::open(kafka_consumer_config cfg,
                                                             apply_fn apply) {
  if (!apply) return error{errc::invalid_argument, "kafka consumer: an apply callback is required"};
  return start(std::move(cfg), std::move(apply), nullptr);
}

result<std::unique_ptr<kafka_consumer>> kafka_consumer::open_batched(kafka_consumer_config cfg,
                                                                     apply_batch_fn apply) {
  if (!apply) return error{errc::invalid_argument, "kafka consumer: an apply callback is required"};
  return start(std::move(cfg), nullptr, std::move(apply));
}

result<std::unique_ptr<kafka_consumer>> kafka_consumer::start(kafka_consumer_config cfg,
                                                              apply_fn apply,
                                                              apply_batch_fn apply_batch) {
  if (cfg.brokers.empty() || cfg.group.empty() || cfg.topics.empty())
    return error{errc::invalid_argument, "kafka consumer: brokers, group and topics are required"};
  std::unique_ptr<kafka_consumer> c{new kafka_consumer()};
  c->counters_ = std::make_shared<kafka_counters>();
  auto st = std::make_unique<impl>();
  st->cfg = std::move(cfg);
  st->counters = c->counters_;
  st->apply = std::move(apply);
  st->apply_batch = std::move(apply_batch);
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  std::vector<std::pair<std::string, std::string>> props{
      {"bootstrap.servers", st->cfg.brokers}, {"group.id", st->cfg.group},
      {"enable.auto.commit", "false"},        {"enable.auto.offset.store", "false"},
      {"auto.offset.reset", "earliest"},      {"log_level", "2"}};
  props.insert(props.end(), st->cfg.properties.begin(), st->cfg.properties.end());
  // librdkafka gives up on a JoinGroup request only after max.poll.interval.ms + 3 s. A
  // broker that drops pending joins (a pause past the members' session timeout: the mock
  // cluster does) left the group consuming nothing for five minutes with the default of
  // 300 s; here it is the session timeout, at least 15 s. The callbacks return well within
  // it (the federation's waits 5 s); one that does not costs a rebalance, never a record.
  auto given = [&](std::string_view name) {
    return std::any_of(props.begin(), props.end(), [&](const auto& kv) { return kv.first == name; });
  };
  if (!given("max.poll.interval.ms")) {
    long session_ms = 45000;  // librdkafka's default
    for (auto& [k, v] : props)
      if (k == "session.timeout.ms") session_ms = std::strtol(v.c_str(), nullptr, 10);
    props.emplace_back("max.poll.interval.ms", std::to_string(std::max(session_ms, 15000L)));
  }
  for (auto& [k, v] : props) {
    if (auto ok = set(conf, k, v); !ok) {
      rd_kafka_conf_destroy(conf);
      return ok.err();
    }
  }
  rd_kafka_conf_set_opaque(conf, st.get());
  rd_kafka_conf_set_error_cb(conf, &impl::on_error);
  rd_kafka_conf_set_rebalance_cb(conf, &impl::on_rebalance);
  char err[512];
  st->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
  if (!st->rk) {
    rd_kafka_conf_destroy(conf);
    return error{errc::invalid_argument, std::string{"kafka consumer: "} + err};
  }
  rd_kafka_poll_set_consumer(st->rk);
  st->consumer_queue = rd_kafka_queue_get_consumer(st->rk);
  rd_kafka_topic_partition_list_t* topics =
      rd_kafka_topic_partition_list_new(static_cast<int>(st->cfg.topics.size()));
  for (auto& t : st->cfg.topics)
    rd_kafka_topic_partition_list_add(topics, t.c_str(), RD_KAFKA_PARTITION_UA);
  auto e = rd_kafka_subscribe(st->rk, topics);
  rd_kafka_topic_partition_list_destroy(topics);
  if (e)
    return error{errc::invalid_argument, std::string{"kafka subscribe: "} + rd_kafka_err2str(e)};
  auto* raw = st.get();
  st->worker = std::thread{[raw] { raw->run(); }};
  c->impl_ = std::move(st);
  return c;
}

result<void> kafka_consumer::commit(std::chrono::milliseconds timeout) {
  std::unique_lock lock{impl_->mu};
  auto ticket = ++impl_->commit_requested;
  if (!impl_->cv.wait_for(lock, timeout, [&] { return impl_->commit_done >= ticket; }))
    return error{errc::timeout, "kafka consumer: commit not done in time"};
  return impl_->last_commit_outcome;
}

}  // namespace warp::bus
