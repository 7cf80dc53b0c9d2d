// The wire format of everything nodes tell each other about data and membership: change
// batches (invalidations and values), heartbeats (membership gossip) and single-record
// replies of the cluster-wide read-through. msgpack in a versioned envelope, so the same
// bytes can ride CAF (as a plain std::string: no CAF type registration), Kafka, Redis, NATS
// or PostgreSQL.
//
// Envelope (a msgpack array):
//   [v=1, kind, flags, sender_id, incarnation, seq, hlc_now, body]
//     kind   : 1 = change batch, 2 = heartbeat, 3 = fetch reply, 4 = pattern table
//     flags  : bit 0 = body is zlib-compressed (then body = [raw_size, bin])
//     body   : change batch -> [record...]
//              record = [key(str|bin), hlc, node, expires_at_ms, kind, value(bin|nil)]
//              heartbeat    -> [name, address, leaving(bool), [member...], pver?, storage_id?]
//                pver = [counter, node] (the sender's pattern-table version; nil when only
//                the storage id follows; absent = 0,0); storage_id: str, present when the
//                sender knows it
//              member = [id, incarnation, name, address, state]
//              fetch reply  -> [found(bool), record|nil]
//              pattern table -> [2, [[glob, spec|nil, counter, node]...]]
//                the whole run-time key-pattern table (docs/keyspaces.md), each glob with its
//                own version; spec nil = the glob was removed (a tombstone). Specs are
//                re-parsed by the receiver (pattern_registry). The first format,
//                [counter, node, [[glob, spec]...]] (one version for the whole table), is
//                still read: every entry gets the table's version. A build that knows only
//                the first format refuses the second as a codec error (its body has two
//                elements, not three), never misreads it.
//
// Decoding never trusts the input: every size is checked against `wire_limits` before
// anything is allocated for it, unknown versions/kinds are rejected, and every failure is
// an errc::codec_error, never an exception or a crash. Fuzzed by bus/fuzz_envelope.cpp.
#pragma once

#include <compare>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "warp/cluster.hpp"
#include "warp/error.hpp"
#include "warp/version.hpp"

namespace warp::bus {

/// The envelope version this build writes and the only one it reads.
inline constexpr std::uint8_t envelope_version = 1;

/// Hard bounds checked on decode (and on encode, so a node never sends what peers reject).
struct wire_limits {
  std::size_t max_message_bytes = 64 * 1024 * 1024;  ///< encoded (and decompressed) size
  std::size_t max_records = 100'000;                 ///< records in one batch
  std::size_t max_key_bytes = 64 * 1024;
  std::size_t max_value_bytes = 16 * 1024 * 1024;
  std::size_t max_members = 4096;     ///< members gossiped in one heartbeat
  std::size_t max_text_bytes = 1024;  ///< names, addresses
  std::size_t max_patterns = 4096;    ///< entries of one pattern table
  std::size_t max_spec_bytes = 4096;  ///< one pattern spec (its glob is at most 1024)
  /// Bodies larger than this are zlib-compressed on encode (0 = never compress).
  std::size_t compress_above = 64 * 1024;
};

enum class message_kind : std::uint8_t {
  changes = 1,
  heartbeat = 2,
  fetch_reply = 3,
  pattern_table = 4
};

/// Version of the run-time key-pattern table: newest wins, compared as (counter, node).
/// (0, 0) is the table a node was started with (the command line's).
struct pattern_version {
  std::uint64_t counter = 0;
  std::uint32_t node = 0;
  friend auto operator<=>(const pattern_version&, const pattern_version&) = default;
};

/// One glob of the run-time key-pattern table with its own version. An empty spec is a
/// tombstone: the glob was removed at `ver` (kept so an older set of it cannot come back).
struct pattern_entry {
  std::string glob;
  std::string spec;
  pattern_version ver;
  bool removed() const noexcept { return spec.empty(); }
  friend bool operator==(const pattern_entry&, const pattern_entry&) = default;
};

/// Whether `a` wins over `b` (same glob): the higher version, then, for the same version
/// (only a node that lost its data dir can hand one out twice, or two command lines at the
/// same --patterns-version), the greater spec (a tombstone is the least), so every node
/// picks the same one. A total order: merging by it is commutative, associative and
/// idempotent.
bool pattern_wins(const pattern_entry& a, const pattern_entry& b) noexcept;

/// Glob -> entry, as nodes keep their table.
using pattern_entries = std::map<std::string, pattern_entry, std::less<>>;

/// Merges one entry into a table (newest wins per glob); true when the table changed.
bool merge_pattern(pattern_entries& into, const pattern_entry& e);

/// The summary of a table that heartbeats carry and tables are compared by: counter = the
/// newest entry's counter, node = a 32-bit digest of every entry (glob, spec, version).
/// Equal summaries: the same table (up to a digest collision, which only delays the next
/// exchange until another change). Entries at version (0, 0), the command line's patterns
/// at the default --patterns-version, are each node's own: they take no part (nodes started
/// with different flags keep them, as before run-time changes existed). A table of only
/// those, or an empty one, is (0, 0).
pattern_version pattern_summary(const pattern_entries& table);

/// What a change record asks a receiver to do with its L1 entry.
enum class record_kind : std::uint8_t {
  invalidate = 0,  ///< the key changed (newer value in storage): drop the entry if older
  value = 1,       ///< hydration: here is the new value and its expiry
  erase = 2,       ///< the key was removed
  clear = 3,       ///< the sender cleared storage: drop every entry not newer (key empty)
};

struct change_record {
  std::string key;
  version ver;
  std::int64_t expires_at_ms = 0;  ///< absolute, ms since the Unix epoch; 0 = never
  record_kind kind = record_kind::invalidate;
  std::string value;  ///< only for record_kind::value
  friend bool operator==(const change_record&, const change_record&) = default;
};

/// Who sent a message, and where it sits in the sender's stream.
struct envelope_header {
  message_kind kind = message_kind::changes;
  std::uint32_t sender = 0;       ///< node id
  std::uint64_t incarnation = 0;  ///< changes on every restart of the sender
  /// changes: this batch's number in the sender's stream (1, 2, 3, ... no holes);
  /// heartbeat: the last batch number sent before it (lets a receiver see a lost tail).
  std::uint64_t seq = 0;
  std::uint64_t hlc_now = 0;  ///< the sender's clock when it sent this
  friend bool operator==(const envelope_header&, const envelope_header&) = default;
};

struct change_batch {
  envelope_header header;
  std::vector<change_record> records;
};

/// Membership states, as gossiped (values are part of the wire format).
using warp::member_state;

struct member_entry {
  std::uint32_t id = 0;
  std::uint64_t incarnation = 0;
  std::string name;
  std::string address;  ///< HOST:PORT of its node-to-node listener
  member_state state = member_state::joining;
  friend bool operator==(const member_entry&, const member_entry&) = default;
};

struct heartbeat {
  envelope_header header;
  std::string name;
  std::string address;
  bool leaving = false;               ///< the sender is shutting down cleanly
  std::vector<member_entry> members;  ///< the sender's view (gossip)
  /// The sender's storage identity (warp::storage::identity); empty = unknown/not sent.
  std::string storage_id;
  /// The version of the sender's key-pattern table: a peer with a newer one sends it.
  pattern_version patterns;
};

/// The whole key-pattern table, tombstones included, the specs as pattern_registry parses
/// them. `ver` is not sent: decode sets it to pattern_summary of the entries received.
struct pattern_table {
  envelope_header header;
  pattern_version ver;
  std::vector<pattern_entry> entries;
};

/// The owner's answer to a remote read-through.
struct fetch_reply {
  envelope_header header;
  bool found = false;
  change_record rec;  ///< kind == value when found
};

// -- encode: errc::invalid_argument when a bound is exceeded -------------------------

result<std::string> encode(const change_batch& batch, const wire_limits& limits = {});
result<std::string> encode(const heartbeat& hb, const wire_limits& limits = {});
result<std::string> encode(const fetch_reply& reply, const wire_limits& limits = {});
result<std::string> encode(const pattern_table& table, const wire_limits& limits = {});

// -- decode: errc::codec_error on anything malformed or out of bounds -------------------

/// Reads only the header (cheap): which decode_* to call next.
result<envelope_header> decode_header(std::string_view bytes, const wire_limits& limits = {});
result<change_batch> decode_batch(std::string_view bytes, const wire_limits& limits = {});
result<heartbeat> decode_heartbeat(std::string_view bytes, const wire_limits& limits = {});
result<fetch_reply> decode_fetch_reply(std::string_view bytes, const wire_limits& limits = {});
result<pattern_table> decode_pattern_table(std::string_view bytes, const wire_limits& limits = {});

/// Bytes a record adds to a batch, roughly (for batch byte bounds).
inline std::size_t approx_size(const change_record& r) noexcept {
  return r.key.size() + r.value.size() + 32;
}

}  // namespace warp::bus
