// Test support: a throw-away PKI made with the `openssl` CLI, for TLS tests of any port
// (RESP, node-to-node, admin HTTP). Real certificates, real verification: no mocks.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace warp::test {

/// Paths of everything make_test_pki wrote. All keys are unencrypted PEM (EC P-256).
struct test_pki {
  std::filesystem::path dir;
  std::filesystem::path ca_crt, ca_key;          ///< the trusted CA
  std::filesystem::path server_crt, server_key;  ///< SAN 127.0.0.1, ::1, localhost
  std::filesystem::path client_crt, client_key;  ///< CN "warp-client", signed by the CA
  /// A second CA nobody trusts, and a client certificate it signed ("wrong CA" tests).
  std::filesystem::path other_ca_crt, other_ca_key;
  std::filesystem::path other_client_crt, other_client_key;
};

/// Creates the PKI in `dir` (which must exist). Certificates are valid for 30 days from
/// now. `server_names` are
/// extra SAN DNS names for the server certificate. Throws std::runtime_error (with the
/// openssl output) when the `openssl` CLI is missing or fails: TLS tests must fail loudly.
test_pki make_test_pki(const std::filesystem::path& dir,
                       const std::vector<std::string>& server_names = {});

/// Issues one more certificate signed by `pki`'s CA into `dir`/`name`.{crt,key}: for
/// node certificates with their own names. `sans` are subjectAltName entries in openssl
/// syntax ("DNS:node1", "IP:127.0.0.1"); `client` adds clientAuth to the extended key
/// usage (serverAuth is always there). Returns {crt, key}.
std::pair<std::filesystem::path, std::filesystem::path> issue_test_cert(
    const test_pki& pki, const std::string& name, const std::string& common_name,
    const std::vector<std::string>& sans, bool client = true);

}  // namespace warp::test
