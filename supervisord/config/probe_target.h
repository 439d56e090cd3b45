// The targets of a worker's probes ([workers.NAME.ready_probe], .liveness_probe):
//
//   tcp  = "127.0.0.1:9000"   "[::1]:9000"   "localhost:9000"
//          "unix:/run/app.sock"   "unix:@name"   "/run/app.sock"  (a unix stream socket)
//   http = "http://127.0.0.1:9000/healthz?full=1"   "http://[::1]/"   (port 80 by default)
//          "http://unix:/run/app.sock:/healthz"     (nginx's form; the path follows the
//                                                     socket's, after a ':'; "/" by default)
//
// The probes run on fdsupd's loop, which never waits on a resolver: a host is a numeric
// IPv4 or IPv6 address, or "localhost" (taken as 127.0.0.1). Placeholders ({instance})
// are the caller's to replace before parsing. Each error says what is wrong, for the
// loader's FILE:LINE:COL messages.
#pragma once

#include <string>
#include <string_view>

#include "config/listen_address.h"
#include "sys/result.h"

namespace fdsup::config {

// A tcp probe's target: a stream address (SocketKind::tcp or unix_stream) with a
// numeric host and a port of 1..65535.
Result<ListenAddress> parse_tcp_target(std::string_view text);

struct HttpUrl {
    ListenAddress address;      // where to connect (tcp or unix_stream)
    std::string host_header;    // the host[:port] as written; "localhost" for a unix socket
    std::string path;           // the request target: "/healthz?full=1"; "/" by default

    bool operator==(const HttpUrl&) const = default;
};

// An http probe's URL. https is refused (fdsupd speaks no TLS), and so is a path with
// what could split the request line (spaces, CR, LF, other control bytes).
Result<HttpUrl> parse_http_url(std::string_view text);

// The URL for messages: "http://127.0.0.1:9000/healthz", "http://unix:/run/app.sock:/healthz".
std::string describe(const HttpUrl& url);

}  // namespace fdsup::config
