#include "test/support/tls_certs.hpp"

#include <fstream>
#include <stdexcept>

#include "test/support/process.hpp"

namespace warp::test {

namespace {

std::string openssl_bin() {
  auto bin = find_program("openssl");
  if (bin.empty()) throw std::runtime_error("tls test: the openssl CLI is not installed");
  return bin;
}

void openssl(std::vector<std::string> args) {
  args.insert(args.begin(), openssl_bin());
  auto r = run(args, std::chrono::seconds{60});
  if (r.exit_code != 0) {
    std::string cmd;
    for (const auto& a : args) cmd += a + " ";
    throw std::runtime_error("tls test: `" + cmd + "` failed (" + std::to_string(r.exit_code) +
                             "): " + r.out + r.err);
  }
}

void write_file(const std::filesystem::path& p, const std::string& text) {
  std::ofstream out(p, std::ios::trunc);
  out << text;
  if (!out) throw std::runtime_error("tls test: cannot write " + p.string());
}

void make_key(const std::filesystem::path& key) {
  openssl(
      {"genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", key.string()});
}

void make_ca(const std::filesystem::path& dir, const std::string& name, const std::string& cn,
             std::filesystem::path& crt, std::filesystem::path& key) {
  key = dir / (name + ".key");
  crt = dir / (name + ".crt");
  make_key(key);
  auto ext = dir / (name + ".ext");
  write_file(ext,
             "[v3_ca]\nbasicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n"
             "subjectKeyIdentifier=hash\n");
  auto csr = dir / (name + ".csr");
  openssl({"req", "-new", "-key", key.string(), "-subj", "/CN=" + cn, "-out", csr.string()});
  openssl({"x509", "-req", "-in", csr.string(), "-signkey", key.string(), "-days", "30", "-out",
           crt.string(), "-extfile", ext.string(), "-extensions", "v3_ca"});
}

void sign(const std::filesystem::path& dir, const std::string& name, const std::string& cn,
          const std::vector<std::string>& sans, bool server, bool client,
          const std::filesystem::path& ca_crt, const std::filesystem::path& ca_key,
          std::filesystem::path& crt, std::filesystem::path& key) {
  key = dir / (name + ".key");
  crt = dir / (name + ".crt");
  make_key(key);
  auto csr = dir / (name + ".csr");
  openssl({"req", "-new", "-key", key.string(), "-subj", "/CN=" + cn, "-out", csr.string()});
  std::string eku;
  if (server) eku = "serverAuth";
  if (client) eku += eku.empty() ? "clientAuth" : ",clientAuth";
  std::string ext_text =
      "[v3]\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n"
      "extendedKeyUsage=" +
      eku + "\nauthorityKeyIdentifier=keyid\n";
  if (!sans.empty()) {
    ext_text += "subjectAltName=";
    for (std::size_t i = 0; i < sans.size(); ++i) ext_text += (i ? "," : "") + sans[i];
    ext_text += "\n";
  }
  auto ext = dir / (name + ".ext");
  write_file(ext, ext_text);
  openssl({"x509", "-req", "-in", csr.string(), "-CA", ca_crt.string(), "-CAkey", ca_key.string(),
           "-CAcreateserial", "-days", "30", "-out", crt.string(), "-extfile", ext.string(),
           "-extensions", "v3"});
}

}  // namespace

test_pki make_test_pki(const std::filesystem::path& dir,
                       const std::vector<std::string>& server_names) {
  test_pki p;
  p.dir = dir;
  make_ca(dir, "ca", "Warp Test CA", p.ca_crt, p.ca_key);
  std::vector<std::string> sans = {"IP:127.0.0.1", "IP:::1", "DNS:localhost"};
  for (const auto& n : server_names) sans.push_back("DNS:" + n);
  sign(dir, "server", "localhost", sans, true, false, p.ca_crt, p.ca_key, p.server_crt,
       p.server_key);
  sign(dir, "client", "warp-client", {}, false, true, p.ca_crt, p.ca_key, p.client_crt,
       p.client_key);
  make_ca(dir, "other-ca", "Unrelated Test CA", p.other_ca_crt, p.other_ca_key);
  sign(dir, "other-client", "warp-client", {}, false, true, p.other_ca_crt, p.other_ca_key,
       p.other_client_crt, p.other_client_key);
  return p;
}

std::pair<std::filesystem::path, std::filesystem::path> issue_test_cert(
    const test_pki& pki, const std::string& name, const std::string& common_name,
    const std::vector<std::string>& sans, bool client) {
  std::filesystem::path crt, key;
  sign(pki.dir, name, common_name, sans, true, client, pki.ca_crt, pki.ca_key, crt, key);
  return {crt, key};
}

}  // namespace warp::test
