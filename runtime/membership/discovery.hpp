// DNS discovery of cluster peers (cluster_options::discovery_dns, docs/cluster.md).
//
// Two forms of the spec:
//   NAME[:PORT]  every A/AAAA record of NAME is a peer at PORT (default: the node's
//                listen port).
//   srv:NAME     every SRV record of NAME (e.g. srv:_warp._tcp.example.com) is a peer at
//                the record's target and port; targets are resolved to addresses from the
//                answer's additional section when it has them, else by A/AAAA lookups.
//                Priority and weight are ignored (every node is a peer); target "." means
//                "no service" (RFC 2782) and is skipped.
// With a server (HOST[:PORT], IPv4 numeric, port 53 by default) every query goes to it
// through libresolv; without one SRV queries use the system resolver (resolv.conf) and
// A/AAAA lookups use getaddrinfo (so /etc/hosts counts too).
//
// Blocking: run it off the actor threads (the cluster actor posts it to the work pool).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "warp/error.hpp"

namespace warp::detail {

/// A parsed discovery spec.
struct discovery_spec {
  bool srv = false;
  std::string name;        ///< without a trailing dot
  std::uint16_t port = 0;  ///< A/AAAA only: the peers' port (0 = the node's listen port)
};

/// Parses `NAME`, `NAME:PORT` or `srv:NAME`; a clear error otherwise.
result<discovery_spec> parse_discovery_spec(const std::string& text);

/// A DNS server to send the queries to.
struct dns_server_address {
  std::string host;  ///< IPv4, numeric
  std::uint16_t port = 53;
};

/// Parses `HOST` or `HOST:PORT` (HOST an IPv4 address); a clear error otherwise.
result<dns_server_address> parse_dns_server(const std::string& text);

// -- answers (exposed for tests) -------------------------------------------------------

struct srv_record {
  std::uint16_t priority = 0;
  std::uint16_t weight = 0;
  std::uint16_t port = 0;
  std::string target;  ///< lower case, no trailing dot; "" = the root ("no service")
};

struct address_record {
  std::string owner;        ///< lower case, no trailing dot
  std::string address;      ///< numeric, IPv4 or IPv6
  bool additional = false;  ///< from the additional section (else the answer section)
};

struct dns_answer {
  std::vector<srv_record> srv;
  std::vector<address_record> addresses;
};

/// Parses a DNS response message: SRV, A and AAAA records of the answer section and A/AAAA
/// records of the additional section (anything else is skipped). Errors: a malformed or
/// truncated message, the TC bit, or an RCODE other than NOERROR (NXDOMAIN named as such).
result<dns_answer> parse_dns_answer(const unsigned char* msg, std::size_t len);

// -- resolution ------------------------------------------------------------------------

struct discovery_result {
  std::vector<std::string> peers;   ///< HOST:PORT (IPv6 as [addr]:port), no duplicates
  std::vector<std::string> errors;  ///< the lookup failed, or single SRV targets did
};

/// Resolves `spec` (`server` empty = the system resolver); `listen_port` fills in a
/// missing A/AAAA port. Never throws.
discovery_result resolve_peers(const discovery_spec& spec, const std::string& server,
                               std::uint16_t listen_port);

/// What the cluster actor calls every discovery interval: parses the spec, resolves it,
/// logs every error (warn, "keeping the current view") and returns the peers found
/// (empty on failure; the caller only ever adds peers, so nothing is forgotten).
std::vector<std::string> discover_peers(const std::string& spec, const std::string& server,
                                        std::uint16_t listen_port);

}  // namespace warp::detail
