// The federation's apply path for keys whose merge policy is not lww (docs/merge.md): a
// CRDT or a registered function merges the incoming state with the local one. Beside
// write_path::apply_federated (lww), defined in write_path.cpp because both commit under
// the same rule: a change from another region is not handed back to the federation sink.
// Internal to runtime/modes and federation/.
#pragma once

#include <string_view>

#include "runtime/modes/write_path.hpp"

namespace warp::detail {

struct node_state;

/// What apply_merged did.
enum class merge_outcome {
  unchanged,  ///< the merge gave the local state back (seen already): nothing written
  taken,      ///< the incoming state subsumed the local one (or none here): stored as is
  joined,     ///< both sides held something the other lacked: the join was stored
};

/// A put of a federated key whose policy is not lww: under the key's stripe,
/// merged = st.merges.merge(merge_policy, local, incoming) and, when it differs from the
/// local bytes, committed through write_path::commit_put (storage, L1, the region's
/// replication, watchers), not handed back to the federation sink. The stored version: the
/// incoming one when the incoming state is taken as is and newer, else a fresh one above
/// both (a join is a value neither side wrote; L1 and the region's replication keep the
/// newer version, so it must be above both). With nothing here, an incoming state not
/// newer than `floor` (a delete remembered here) is not applied. A merge error (unknown
/// policy: invalid_argument; bytes that do not decode: codec_error) changes nothing.
result<merge_outcome> apply_merged(node_state& st, const federated_write& w,
                                   std::string_view merge_policy, const key_policy& policy,
                                   consistency_mode& m, version floor);

}  // namespace warp::detail
