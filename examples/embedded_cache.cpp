// Embedding Warp in a C++ service: a node with SQLite storage, two key patterns and a typed
// cache of a user struct. Build it in the tree (target example_embedded_cache) or, after
// `cmake --install`, with find_package(warp) and target_link_libraries(app warp::warp).
#include <cstdio>
#include <filesystem>

#include <warp/cache.hpp>
#include <warp/node.hpp>

struct user {
  std::string name;
  int visits = 0;
  MSGPACK_DEFINE(name, visits);
};

int main(int argc, char** argv) {
  using namespace std::chrono_literals;
  warp::node_config config;
  config.name = "example";
  config.data_dir =
      argc > 1 ? argv[1] : (std::filesystem::temp_directory_path() / "warp-example").string();
  config.storage = "sqlite";
  config.log_level = "warn";

  auto node = warp::node::start(config);
  if (!node) {
    std::fprintf(stderr, "cannot start: %s\n", node.err().to_string().c_str());
    return 1;
  }
  (*node)->register_pattern("user:*", warp::mode::strong_local, 10min);
  (*node)->register_pattern("session:*", warp::mode::strong_local, 30s);

  warp::cache<user> users{**node};
  auto current = users.get("user:42");
  user u = current ? *current : user{"Ada", 0};
  u.visits += 1;
  if (auto st = users.set("user:42", u); !st) {
    std::fprintf(stderr, "set failed: %s\n", st.err().to_string().c_str());
    return 1;
  }
  auto again = users.get("user:42");  // an L1 hit: no storage call, no actor mailbox
  std::printf("%s has visited %d times\n", again->name.c_str(), again->visits);

  auto stats = (*node)->stats();
  std::printf("l1 hits=%llu misses=%llu entries=%llu\n",
              static_cast<unsigned long long>(stats.l1.hits),
              static_cast<unsigned long long>(stats.l1.misses),
              static_cast<unsigned long long>(stats.l1.entries));
  return 0;
}
