// Everything a node is configured with. warpd fills it from CAF's config system (a config
// file and the command line); an embedding service fills it in code.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "warp/error.hpp"
#include "warp/l1.hpp"
#include "warp/pattern.hpp"
#include "warp/storage.hpp"

namespace warp {

/// Bounds on what a client may send; violating one is errc::key_too_large/value_too_large.
/// The one check of keys and values against them: every entry point (node API, control
/// actor, strong mode) asks these.
struct limits {
  std::size_t max_key_size = 8 * 1024;
  std::size_t max_value_size = 16 * 1024 * 1024;

  /// errc::key_too_large naming the size and the bound, or ok.
  result<void> check_key(std::string_view key) const;
  /// errc::value_too_large naming the size and the bound, or ok.
  result<void> check_value(std::string_view value) const;
};

/// How a node finds, watches and talks to its peers (see docs/cluster.md). The cluster is
/// on when the node listens and has peers (static seeds or DNS discovery); a lone node
/// with a listener still answers peers that contact it.
struct cluster_options {
  /// DNS discovery, re-resolved every `discovery_interval` (empty = off):
  ///   `NAME` or `NAME:PORT`: every A/AAAA record of NAME is a peer at PORT (default: this
  ///   node's listen port);
  ///   `srv:NAME`: every SRV record of NAME (e.g. `srv:_warp._tcp.example.com`) is a peer
  ///   at the record's target and port.
  /// A failed lookup is logged and changes nothing: peers are only ever added by DNS.
  std::string discovery_dns;
  std::chrono::milliseconds discovery_interval{10000};
  /// DNS server for discovery, `HOST` or `HOST:PORT` (IPv4, port 53 by default); empty =
  /// the system resolver (resolv.conf for SRV, getaddrinfo for A/AAAA).
  std::string discovery_dns_server;
  /// How often a node tells every peer it is alive.
  std::chrono::milliseconds heartbeat_interval{200};
  /// A peer not heard from for half of this is `suspect`, for all of it `down`.
  std::chrono::milliseconds failure_timeout{2000};
  /// Fixed number of key ranges (the same on every node of a cluster).
  std::size_t ranges = 271;
  /// Adaptive batching of outgoing change records: off = one message per record.
  bool batching = true;
  /// Upper bounds of one batch: records, bytes, and how long a record may wait for more
  /// under load (an idle node sends at once whatever this says).
  std::size_t batch_max_records = 4096;
  std::size_t batch_max_bytes = 1024 * 1024;
  std::chrono::microseconds batch_max_delay{500};
  /// Load above which records are held back at all (records/s handed to the bus, measured
  /// by the cluster actor over windows of >= 1 ms). Below it every change goes out at once:
  /// one CAF message per change per peer is cheap at that rate, and waiting only adds
  /// latency. 0 = always considered busy (the fixed-delay policy).
  double batch_busy_rate = 20'000;
  /// Under load, a batch waits only as long as it takes this many records to arrive at the
  /// observed rate (capped by batch_max_delay): the higher the load, the shorter the wait.
  std::size_t batch_target_records = 256;
  /// Batches larger than this are zlib-compressed (0 = never).
  std::size_t compress_above = 64 * 1024;
  /// Cluster-wide read-through: how long a miss waits for the range owner before it falls
  /// back to a direct storage fetch.
  std::chrono::milliseconds owner_fetch_timeout{500};
  /// Nodes that coalesce each range's read-through misses: the owner, then standbys in
  /// rendezvous order (the standby is the node that takes the range over if the owner
  /// goes down). A miss the owner does not answer within owner_fetch_timeout goes to the
  /// next one, so one fetch per key stays cluster-wide while an owner is paused or dying;
  /// after the last one, a direct storage fetch. 1 = the owner only.
  std::size_t read_replicas = 2;
  /// A member whose storage identity differs from ours while distributed patterns run
  /// means the cluster does not share storage (each node sees only its own writes): it is
  /// reported as an error (cluster_view::storage_conflict) and warpd refuses to run. True:
  /// reported as a warning only (docs/security.md, "Storage identity").
  bool allow_unshared_storage = false;
};

/// The strong_distributed mode (see docs/strong.md): ABD quorum registers over a static
/// member list. Active when the node listens and has peers; every node of the cluster must
/// be given the same member list (by default its own listen address plus `peers`).
/// What serves strong_distributed keys (docs/strong.md, "Raft engine"): Raft groups with a
/// durable log, or the older ABD quorum registers in replica memory (kept for comparison).
/// The library default stays abd because raft writes under data_dir, whose default is
/// shared by every node of a process; warpd (one node, its own --data-dir) defaults to raft.
enum class strong_engine : std::uint8_t { raft = 0, abd = 1 };

struct strong_options {
  /// raft: linearizable get/set/delete and read-modify-write on Raft groups whose logs live
  /// under <data_dir>/raft (give every node its own data_dir); abd: quorum registers, no
  /// disk, no read-modify-write.
  strong_engine engine = strong_engine::abd;
  /// Raft groups (multi-Raft: each owns a slice of the key space over its replica set).
  /// 0: 4 x the member count, so each node leads a few and the leaders spread.
  std::size_t groups = 0;
  /// The Raft hosts' tick (heartbeats every tick, elections after 10-20 ticks).
  std::chrono::milliseconds raft_tick{100};
  /// Entries a Raft group applies beyond its last snapshot before it snapshots its state
  /// and drops the log below it (0 = never: the log grows without bound).
  std::uint64_t raft_snapshot_entries = 10'000;
  /// Copies of each key range (capped by the number of members); quorums are majorities.
  std::size_t replication_factor = 3;
  /// Bound on one strong get/set/delete. A write that times out after its store phase
  /// began returns errc::unknown_outcome; before it, errc::timeout (nothing was applied).
  std::chrono::milliseconds timeout{1000};
  /// Explicit member list (HOST:PORT, spelled as each member's --listen). Empty = this
  /// node's listen address plus `peers`.
  std::vector<std::string> members;
  /// Background anti-entropy: how often each range's digest is compared with its replicas.
  std::chrono::milliseconds anti_entropy_interval{5000};
  /// Raft: join a running cluster (docs/strong.md, "Membership"): with no member id on disk
  /// take a fresh one and vote nowhere until `warpctl members add`; with one, no effect.
  bool join = false;
  /// Raft: the watch hub's bounds (docs/coordination.md, "Watch").
  struct watch_bounds {
    std::size_t ring_entries = 4096;      ///< changes kept per key group (replay, history)
    std::size_t ring_bytes = 4u << 20;    ///< bytes kept per group (keys, values, prev)
    std::size_t max_watchers = 256;       ///< concurrent watches per node
    std::size_t max_queue = 10'000;       ///< events queued per watcher before `slow`
    std::chrono::milliseconds progress_interval{1000};  ///< progress to idle watchers
  } watch;
};

/// The node port (node-to-node and warpctl traffic, CAF's BASP): who may connect and how
/// much a connection may make the node allocate (bus/node_transport, docs/security.md).
struct transport_options {
  /// Mutual TLS: this node's certificate (PEM chain), its private key, and the CA (PEM) that
  /// signs every member's and warpctl's certificate. All three or none. With them, a peer
  /// without a certificate signed by the CA is refused during the TLS handshake, before
  /// any of its bytes reach a decoder.
  std::string tls_cert;
  std::string tls_key;
  std::string tls_ca;
  /// Largest message a connection may announce once its handshake is done; a larger
  /// announcement closes the connection before anything is allocated for it. Must hold
  /// the largest value plus framing (checked at start against limits.max_value_size).
  std::size_t max_message_size = 64 * 1024 * 1024;
  /// Largest first message (the BASP handshake) a connection may announce: the most a
  /// stranger that reaches the port can make the node allocate per connection.
  std::size_t max_handshake_size = 64 * 1024;
  /// Connections that have not finished their handshake yet, at once; more are closed
  /// on accept.
  std::size_t max_pending_connections = 64;
  /// Allow a listener on a non-loopback address without TLS (Redis's protected mode
  /// turned off). Without it such a node refuses to start.
  bool insecure = false;

  bool tls() const noexcept { return !tls_cert.empty() || !tls_key.empty() || !tls_ca.empty(); }
};

/// The validator (docs/validator.md): compares what L1 serves with storage, by version,
/// for the keys that changed and a random sample of cached keys.
struct validator_options {
  /// Mode of keys whose pattern names none (`--validator`); off = no validator unless a
  /// pattern sets `+validate=`.
  validate_mode mode = validate_mode::off;
  /// How often the validator checks the keys that are due and a fresh sample.
  std::chrono::milliseconds interval{1000};
  /// Cached keys drawn at random per tick (besides the changed keys).
  std::size_t sample = 64;
  /// How long a change may take to reach every copy: a changed key is first checked this
  /// long after the change, and a disagreement is declared only if it is still there
  /// this long after it was first seen.
  std::chrono::milliseconds grace{500};
  /// Changed keys waiting for their check, at most; more are dropped (and counted).
  std::size_t max_pending = 10000;
  /// Keys one tick (or one `warpctl validate` pass) checks, at most.
  std::size_t max_batch = 1000;
};

/// Federation between regions (docs/federation.md): this node's region, the other regions'
/// gateways, and how changes of `+federated` keys are shipped to them.
struct federation_options {
  /// This node's region. Empty (the default) = no federation.
  std::string region;
  /// `REGION=HOST:PORT` each: a node of another region (its gateway) reached on its node
  /// port. Several entries for one region are its gateways in order of preference: while
  /// the first is down, the next takes the changes.
  std::vector<std::string> links;
  /// Changes per batch frame, at most (Hazelcast WAN's default).
  std::size_t batch_size = 500;
  /// A change waits at most this long for its batch to fill.
  std::chrono::milliseconds max_delay{1000};
  /// Changes queued per linked region (unsent or unacknowledged), at most.
  std::size_t queue_limit = 100000;
  /// What a full queue does: `repair` drops the change, counts it and marks its key range
  /// for the next anti-entropy pass (the only policy: writers are never blocked).
  std::string queue_full = "repair";
  /// How often digests of the federated keys are compared with each linked region
  /// (anti-entropy); 0 = only after an overflow or a link coming back.
  std::chrono::milliseconds anti_entropy_interval{60000};
  /// A batch not acknowledged within this long is sent again (to the next gateway).
  std::chrono::milliseconds ack_timeout{5000};
  /// The Kafka transport (docs/federation.md, "Kafka transport"): bootstrap servers. A link
  /// `REGION=kafka` then travels over topics `<kafka_topic_prefix><from>.<to>` instead of
  /// a CAF link; empty = no Kafka.
  std::string kafka_brokers;
  std::string kafka_topic_prefix = "warp.fed.";
  /// Consumer group of this region's nodes (every node consumes; each record is applied
  /// by one of them); empty = `warp-fed-<region>`.
  std::string kafka_group;
  /// Envelope encoding of the topics this node produces: msgpack or json.
  std::string kafka_format = "msgpack";
  /// Extra librdkafka settings (NAME, VALUE) of the producers and the consumer.
  std::vector<std::pair<std::string, std::string>> kafka_properties;
  bool enabled() const noexcept { return !region.empty(); }
  /// Checks the region name and links (part of node_config::validate).
  result<void> validate_links(std::string_view listen) const;
};

/// Hot-key tracking and warm-up (docs/hotkeys.md).
struct hot_keys_options {
  /// Track the hottest keys read on this node (`/admin/hotkeys`, `warpctl hotkeys`).
  bool track = true;
  /// Keys kept in the top-k list.
  std::size_t capacity = 256;
  /// One read in this many is recorded (rounded up to a power of two; 1 = every read).
  std::uint32_t sample_every = 64;
  /// Every count is halved once per half-life (0 = never).
  std::chrono::milliseconds half_life{60'000};
  /// Load hot keys into L1 on start and when this node takes over key ranges.
  bool warmup = false;
  /// At most this many keys per warm-up.
  std::size_t warmup_limit = 1000;
};

struct node_config {
  /// Node name: shown in views and logs. Empty = "warp-<pid>".
  std::string name;
  /// Node-to-node and warpctl endpoint (CAF's network layer), HOST:PORT. Empty (the
  /// default) = no listener: an embedded cache opens no port unless asked to (warpd sets
  /// 127.0.0.1:4700 explicitly).
  std::string listen;
  /// Seed peers, HOST:PORT each.
  std::vector<std::string> peers;
  /// `memory`, `sqlite`, `sqlite:PATH` or `postgres:URI`.
  std::string storage = "memory";
  /// A storage adapter of the embedding service's own; when set, `storage` is ignored.
  std::shared_ptr<warp::storage> storage_adapter;
  /// Where durable state (SQLite database, ...) lives.
  std::string data_dir = "warp-data";
  /// Admin HTTP endpoint (/healthz, /metrics, admin JSON), HOST:PORT. Empty = off.
  std::string http;
  /// RESP sidecar endpoint, HOST:PORT. Empty = off.
  std::string resp;
  /// `GLOB=MODE[:TTL]` specs (see pattern_registry::parse_spec).
  std::vector<std::string> patterns;
  /// The version counter of `patterns` as a run-time table (version (N, 0)): a table
  /// persisted under data_dir or gossiped by a peer replaces it only when newer (docs/
  /// keyspaces.md). 0: any run-time change wins.
  std::uint64_t patterns_version = 0;
  /// Policy of keys no pattern matches.
  key_policy default_policy;
  /// trace, debug, info, warn, error, critical, off.
  std::string log_level = "info";
  l1_options l1;
  warp::hot_keys_options hot_keys;
  warp::limits limits;
  warp::cluster_options cluster;
  warp::strong_options strong;
  warp::transport_options transport;
  warp::validator_options validator;
  warp::federation_options federation;
  /// Worker threads of the actor system the node starts itself (ignored for a host system).
  std::size_t scheduler_threads = 2;
  /// Threads of the node's one blocking executor: storage I/O on behalf of actors (the
  /// control protocol, range owners serving peers' misses), DNS discovery, and the async
  /// API's calls. A read-through may wait there for a peer (owner_fetch_timeout), so
  /// leave some headroom over the cores.
  std::size_t executor_threads = 8;
  /// How far ahead of this node's clock a hybrid clock reading from another node or
  /// region may be (merge/hlc.hpp): a reading further ahead is ignored (the clock does not
  /// follow it), counted in warp_hlc_remote_skew_total and logged. Positive.
  std::chrono::milliseconds max_clock_skew{5'000};

  /// Checks everything node::start would refuse, without starting anything: bounds,
  /// endpoints, patterns, the log level, TLS and listener rules. A message names the
  /// field, what it got and, where one exists, its default (taken from this struct).
  result<void> validate() const;
};

}  // namespace warp
