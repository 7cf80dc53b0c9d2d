// The node's merge policies (docs/merge.md): the registry lives in the shared node state so
// the federation apply path reaches it; the node API only registers and binds.
#include "merge/policy.hpp"
#include "runtime/node/node_impl.hpp"
#include "warp/node.hpp"

namespace warp {

namespace detail {
merge::registry& merges_of(const node& n) {
  return n.impl_->merges;
}
}  // namespace detail

result<void> node::register_merge(std::string_view name, merge_fn fn) {
  return impl_->merges.register_merge(name, std::move(fn));
}

result<void> node::bind_merge(std::string_view glob, std::string_view policy) {
  return impl_->merges.bind(glob, policy);
}

}  // namespace warp
