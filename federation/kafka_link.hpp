// The Kafka transport of federation (docs/federation.md, "Kafka transport"), its pure
// parts: a federation change as the documented Kafka envelope (bus/kafka_envelope.hpp) and
// back, and the topic names. A link `REGION=kafka` ships this region's changes for REGION
// to the topic PREFIX<self>.<REGION> (record key = cache key, so per-key order holds in a
// partition); every node of REGION consumes PREFIX<from>.<REGION> of each region linked to
// it in one consumer group per region, committing offsets only after apply. The queue,
// batching, loop rule, dedup and apply path are those of every link (link_state.hpp,
// federation_actor.cpp).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "bus/kafka_envelope.hpp"
#include "federation/change.hpp"
#include "warp/error.hpp"

namespace warp::federation {

/// PREFIX<from>.<to>: the topic carrying `from`'s changes to `to`.
std::string kafka_topic(std::string_view prefix, std::string_view from, std::string_view to);

/// The envelope of `c`, stamped `now_ms` (wall clock): its expiry travels as ttl_ms
/// relative to ts_ms; `lww` travels as no policy field.
bus::kafka_change to_kafka(const change& c, std::int64_t now_ms);
/// The change an envelope carries; errc::codec_error for an op federation does not ship
/// (r, a repair, is a put).
result<change> from_kafka(bus::kafka_change k);

/// The encoding of a record, told by its first byte: '{' is JSON, anything else msgpack
/// (whose envelope is an array), so a region reads topics of either encoding.
bus::kafka_format sniff_format(std::string_view payload) noexcept;

}  // namespace warp::federation
