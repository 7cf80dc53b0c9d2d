// warpd's options: one table drives the command line (CLI11), CAF's config system (the
// `warp { ... }` section of a config file) and the conversion into warp::node_config.
//
// Precedence: built-in default < config file (--config, CAF format) < command line.
// Everything ends up in the CAF config's content (`warp.*` keys, plus CAF's own keys such
// as `scheduler.max-threads`), and the node_config is built from there only, so a value is
// read and validated in exactly one place whatever its source.
#pragma once

#include "warp/endpoint.hpp"

#include <chrono>
#include <cstddef>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include <caf/actor_system_config.hpp>

#include "warp/config.hpp"
#include "warp/error.hpp"
#include "apps/warpd/admin_http.hpp"
#include "warp/storage.hpp"
#include "federation/cdc_ingest.hpp"

namespace warpd {

/// duration: millisecond precision (`250ms`, `30s`, plain milliseconds); duration_us also
/// takes `us` (the batch delay is sub-millisecond); boolean: true/false, on/off, yes/no, 1/0.
enum class opt_kind { string, string_list, size, duration, duration_us, boolean };

struct option_def {
  std::string_view key;   ///< CAF config key, e.g. "warp.data-dir"
  std::string_view flag;  ///< command-line flag, e.g. "--data-dir"
  opt_kind kind;
  std::string_view fallback;  ///< default as text ("" = empty / none)
  std::string_view help;
};

/// Every option warpd knows, in --help order.
const std::vector<option_def>& option_table();

/// The actor system config of warpd: declares every `warp.*` option so CAF knows them
/// (its config file parser and `--caf#` dump see them), loads the middleman, and registers
/// the control protocol's error category.
class warpd_config : public caf::actor_system_config {
 public:
  warpd_config();
  /// Every option CAF or warpd declared (CAF's sections plus `warp`).
  const caf::config_option_set& declared_options() const noexcept { return custom_options_; }
};

/// What the command line gave: only flags the user actually passed appear here.
struct cli_values {
  std::map<std::string, std::string> strings;
  std::map<std::string, std::vector<std::string>> lists;
  std::map<std::string, std::size_t> sizes;
};

/// Reads `path` (CAF config format) into `cfg`; a clear error when it cannot be opened or
/// parsed, is not a regular file, or holds a section or key neither warpd nor CAF declares
/// (CAF itself keeps unknown ones silently, so a typo would drop a setting). An empty path reads
/// nothing (and, unlike CAF's default, never picks up a caf-application.ini lying in the working
/// directory).
warp::result<void> load_config_file(warpd_config& cfg, const std::string& path);

/// Writes the command-line values over the file's.
void apply_cli(warpd_config& cfg, const cli_values& cli);

/// The RESP sidecar's limits (mirrors sidecar::resp_options, which this header does not
/// include so warpd builds without the sidecar too).
struct resp_limits {
  std::size_t max_clients = 10000;
  std::chrono::seconds idle_timeout{0};
  std::size_t max_bulk_length = 512 * 1024 * 1024;
  std::size_t max_multibulk_length = 1024 * 1024;
  std::size_t max_inline_length = 64 * 1024;
  std::size_t max_output_buffer = 64 * 1024 * 1024;
  std::size_t max_client_memory = 1024ull * 1024 * 1024;
  std::size_t auth_max_failures = 10;
  std::chrono::milliseconds auth_failure_delay{10};
  bool allow_flush = true;
  std::string tls_cert, tls_key, tls_ca;
  std::string tls_port;  ///< HOST:PORT of the separate TLS listener, empty = none
  std::string tls_auth_clients = "no";
};

/// What warpd needs beside node_config.
struct settings {
  warp::node_config node;
  std::string resp_password;  ///< from the flag, the file or WARP_RESP_PASSWORD
  std::string resp_password_file;
  resp_limits resp;
  admin_options admin;
  /// --fault-injection (test only): the admin port's /admin/fault/partition.
  bool fault_injection = false;
  std::size_t maxmemory = 0;  ///< memory storage bound, 0 = none
  warp::memory_storage_options::policy maxmemory_policy =
      warp::memory_storage_options::policy::noeviction;
  /// CDC ingest (--cdc-*); off when brokers are empty.
  warp::federation::cdc_config cdc;
  /// Worth a log line once logging is set up (build_settings runs before).
  std::vector<std::string> warnings;
};

/// Validates the `warp` section (unknown keys, wrong types, bad modes/durations/patterns)
/// and builds the node configuration.
warp::result<settings> build_settings(const warpd_config& cfg);

using warp::parse_endpoint;

}  // namespace warpd
