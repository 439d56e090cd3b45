// The targets of probes (config/probe_target.h): tcp targets (HOST:PORT, [V6]:PORT,
// localhost, unix sockets by path, abstract name or bare path) and http URLs (port and
// path defaults, queries, nginx's unix form), and what is wrong with a bad one.
#include <doctest/doctest.h>

#include <string>

#include "config/probe_target.h"

using fdsup::ListenAddress;
using fdsup::SocketKind;
using fdsup::config::HttpUrl;
using fdsup::config::parse_http_url;
using fdsup::config::parse_tcp_target;

namespace {

std::string tcp_error(const std::string& text) {
    auto r = parse_tcp_target(text);
    REQUIRE_MESSAGE(!r, "expected an error for " << text);
    return r.error().text();
}

std::string http_error(const std::string& text) {
    auto r = parse_http_url(text);
    REQUIRE_MESSAGE(!r, "expected an error for " << text);
    return r.error().text();
}

}  // namespace

// ---------------------------------------------------------------- parse_tcp_target

TEST_CASE("tcp target: numeric IPv4 and IPv6 hosts, localhost as 127.0.0.1") {
    auto a = parse_tcp_target("127.0.0.1:9000");
    REQUIRE(a);
    CHECK(a->kind == SocketKind::tcp);
    CHECK(a->host == "127.0.0.1");
    CHECK(a->port == 9000);

    auto b = parse_tcp_target("[::1]:65535");
    REQUIRE(b);
    CHECK(b->kind == SocketKind::tcp);
    CHECK(b->host == "::1");
    CHECK(b->port == 65535);

    auto c = parse_tcp_target("localhost:1");
    REQUIRE(c);
    CHECK(c->host == "127.0.0.1");
    CHECK(c->port == 1);
    CHECK(parse_tcp_target("LocalHost:80")->host == "127.0.0.1");
}

TEST_CASE("tcp target: unix sockets by unix:/path, unix:@name and a bare absolute path") {
    auto a = parse_tcp_target("unix:/run/app.sock");
    REQUIRE(a);
    CHECK(a->kind == SocketKind::unix_stream);
    CHECK(a->path == "/run/app.sock");
    CHECK(!a->abstract);

    auto b = parse_tcp_target("unix:@app-health");
    REQUIRE(b);
    CHECK(b->kind == SocketKind::unix_stream);
    CHECK(b->path == "app-health");
    CHECK(b->abstract);

    auto c = parse_tcp_target("/run/app.sock");
    REQUIRE(c);
    CHECK(*c == *a);
}

TEST_CASE("tcp target: a name is refused, saying fdsupd resolves none on its loop") {
    CHECK(tcp_error("db.example.com:5432") ==
          "invalid probe target \"db.example.com:5432\": a probe host must be a numeric address or "
          "\"localhost\" (fdsupd resolves no names on its loop)");
    CHECK(tcp_error("127.1:80").find("numeric address") != std::string::npos);  // inet_pton's strict form
    CHECK(tcp_error("[fe80::1%eth0]:80").find("numeric address") != std::string::npos);
}

TEST_CASE("tcp target: ports, brackets, schemes and unix forms that are wrong say so") {
    CHECK(tcp_error("127.0.0.1:0") ==
          "invalid probe target \"127.0.0.1:0\": port 0: a probe needs the port the worker listens on (1-65535)");
    CHECK(tcp_error("127.0.0.1:65536") == "invalid probe target \"127.0.0.1:65536\": port 65536 out of range");
    CHECK(tcp_error("127.0.0.1") == "invalid probe target \"127.0.0.1\": expected HOST:PORT");
    CHECK(tcp_error("127.0.0.1:") == "invalid probe target \"127.0.0.1:\": missing port");
    CHECK(tcp_error("127.0.0.1:http") == "invalid probe target \"127.0.0.1:http\": invalid port \"http\"");
    CHECK(tcp_error(":80") == "invalid probe target \":80\": missing host");
    CHECK(tcp_error("::1:80") ==
          "invalid probe target \"::1:80\": an IPv6 address must be in brackets, as in [::1]:9000");
    CHECK(tcp_error("[::1:80") == "invalid probe target \"[::1:80\": missing ']' after IPv6 address");
    CHECK(tcp_error("tcp://127.0.0.1:80").starts_with("invalid probe target \"tcp://127.0.0.1:80\": a tcp target has no scheme"));
    CHECK(tcp_error("unix:run/app.sock") ==
          "invalid probe target \"unix:run/app.sock\": unix socket path must be absolute");
    CHECK(tcp_error("unixgram:/run/app.sock").find("stream socket") != std::string::npos);
    CHECK(tcp_error("").starts_with("a tcp probe target is empty"));
    CHECK(tcp_error("/" + std::string(200, 'a')).find("unix socket path too long") != std::string::npos);
}

// ---------------------------------------------------------------- parse_http_url

TEST_CASE("http URL: host, port, path and query; the Host header as written") {
    auto a = parse_http_url("http://127.0.0.1:9000/healthz?full=1");
    REQUIRE(a);
    CHECK(a->address.kind == SocketKind::tcp);
    CHECK(a->address.host == "127.0.0.1");
    CHECK(a->address.port == 9000);
    CHECK(a->host_header == "127.0.0.1:9000");
    CHECK(a->path == "/healthz?full=1");
    CHECK(describe(*a) == "http://127.0.0.1:9000/healthz?full=1");

    auto b = parse_http_url("http://[::1]/");
    REQUIRE(b);
    CHECK(b->address.host == "::1");
    CHECK(b->address.port == 80);
    CHECK(b->host_header == "[::1]");
    CHECK(b->path == "/");

    auto c = parse_http_url("HTTP://localhost:8080");
    REQUIRE(c);
    CHECK(c->address.host == "127.0.0.1");
    CHECK(c->address.port == 8080);
    CHECK(c->host_header == "localhost:8080");
    CHECK(c->path == "/");

    auto d = parse_http_url("http://127.0.0.1?ready");
    REQUIRE(d);
    CHECK(d->address.port == 80);
    CHECK(d->host_header == "127.0.0.1");
    CHECK(d->path == "/?ready");

    auto e = parse_http_url("http://[::1]:9001/a%20b");
    REQUIRE(e);
    CHECK(e->address.port == 9001);
    CHECK(e->host_header == "[::1]:9001");
    CHECK(e->path == "/a%20b");
}

TEST_CASE("http URL: nginx's unix form, the path after the socket's; Host is localhost") {
    auto a = parse_http_url("http://unix:/run/app.sock:/healthz");
    REQUIRE(a);
    CHECK(a->address.kind == SocketKind::unix_stream);
    CHECK(a->address.path == "/run/app.sock");
    CHECK(a->host_header == "localhost");
    CHECK(a->path == "/healthz");
    CHECK(describe(*a) == "http://unix:/run/app.sock:/healthz");

    auto b = parse_http_url("http://unix:/run/app.sock");
    REQUIRE(b);
    CHECK(b->address.path == "/run/app.sock");
    CHECK(b->path == "/");

    auto c = parse_http_url("http://unix:@app:/ready?x=1");
    REQUIRE(c);
    CHECK(c->address.abstract);
    CHECK(c->address.path == "app");
    CHECK(c->path == "/ready?x=1");
    CHECK(describe(*c) == "http://unix:@app:/ready?x=1");
}

TEST_CASE("http URL: https, other schemes and credentials are refused with the reason") {
    CHECK(http_error("https://127.0.0.1/healthz") ==
          "invalid probe URL \"https://127.0.0.1/healthz\": https is not supported: fdsupd speaks no TLS "
          "(probe a plain-http port, or use exec = [\"curl\", ...])");
    CHECK(http_error("ftp://127.0.0.1/") == "invalid probe URL \"ftp://127.0.0.1/\": unsupported scheme \"ftp\" (only http://)");
    CHECK(http_error("127.0.0.1:80/healthz") ==
          "invalid probe URL \"127.0.0.1:80/healthz\": expected http://HOST[:PORT][/PATH]");
    CHECK(http_error("http://user:pw@127.0.0.1/").find("user:password@") != std::string::npos);
    CHECK(http_error("http:///healthz") == "invalid probe URL \"http:///healthz\": missing host");
}

TEST_CASE("http URL: hosts and ports follow the tcp target's rules") {
    CHECK(http_error("http://app.internal/healthz").find("a probe host must be a numeric address or \"localhost\"") !=
          std::string::npos);
    CHECK(http_error("http://127.0.0.1:0/") ==
          "invalid probe URL \"http://127.0.0.1:0/\": port 0: a probe needs the port the worker listens on (1-65535)");
    CHECK(http_error("http://127.0.0.1:/") == "invalid probe URL \"http://127.0.0.1:/\": missing port");
    CHECK(http_error("http://::1/").find("in brackets") != std::string::npos);
    CHECK(http_error("http://unix:run.sock:/x").find("unix socket path must be absolute") != std::string::npos);
    CHECK(http_error("http://unix:/run/app.sock:healthz").find("starting with '/'") != std::string::npos);
}

TEST_CASE("http URL: a path that could split the request line is refused") {
    const std::string message = "the path must not contain spaces, control characters or non-ASCII bytes";
    for (const std::string& url : {std::string("http://127.0.0.1/a b"), std::string("http://127.0.0.1/x\r\nHost: evil"),
                                   std::string("http://127.0.0.1/x\nX: y"), std::string("http://127.0.0.1/\t"),
                                   std::string("http://127.0.0.1/\x7f"), std::string("http://127.0.0.1/caf\xc3\xa9"),
                                   std::string("http://unix:/run/a.sock:/x y")}) {
        CAPTURE(url);
        CHECK(http_error(url).find(message) != std::string::npos);
    }
    CHECK(http_error("http://127.0.0.1/#top").find("#fragment") != std::string::npos);
}
