// The `listen` strings of [sockets.NAME]: tcp, udp, unix paths, abstract names and
// the other unix kinds, and what is wrong with a bad one.
#include <doctest/doctest.h>

#include <string>

#include "config/listen_address.h"

using fdsup::ListenAddress;
using fdsup::parse_listen_address;
using fdsup::SocketKind;

namespace {

std::string parse_error(const std::string& text) {
    auto r = parse_listen_address(text);
    REQUIRE_MESSAGE(!r, "expected an error for " << text);
    return r.error().message;
}

}  // namespace

// ---------------------------------------------------------------- parse_listen_address

TEST_CASE("parse: tcp and udp with IPv4 hosts and names") {
    auto a = parse_listen_address("tcp://127.0.0.1:8080");
    REQUIRE(a);
    CHECK(a->kind == SocketKind::tcp);
    CHECK(a->host == "127.0.0.1");
    CHECK(a->port == 8080);
    CHECK(a->is_inet());
    CHECK(a->listens());

    auto b = parse_listen_address("udp://localhost:0");
    REQUIRE(b);
    CHECK(b->kind == SocketKind::udp);
    CHECK(b->host == "localhost");
    CHECK(b->port == 0);
    CHECK(!b->listens());

    auto c = parse_listen_address("tcp://0.0.0.0:65535");
    REQUIRE(c);
    CHECK(c->port == 65535);
}

TEST_CASE("parse: bracketed IPv6 hosts") {
    auto a = parse_listen_address("tcp://[::]:80");
    REQUIRE(a);
    CHECK(a->host == "::");
    CHECK(a->port == 80);

    auto b = parse_listen_address("udp://[::1]:5353");
    REQUIRE(b);
    CHECK(b->kind == SocketKind::udp);
    CHECK(b->host == "::1");

    auto c = parse_listen_address("tcp://[fe80::1%lo]:80");
    REQUIRE(c);
    CHECK(c->host == "fe80::1%lo");
}

TEST_CASE("parse: unix path and abstract forms") {
    auto a = parse_listen_address("unix:/run/app.sock");
    REQUIRE(a);
    CHECK(a->kind == SocketKind::unix_stream);
    CHECK(a->path == "/run/app.sock");
    CHECK(!a->abstract);
    CHECK(a->is_unix());
    CHECK(a->listens());

    auto b = parse_listen_address("unix:@app");
    REQUIRE(b);
    CHECK(b->kind == SocketKind::unix_stream);
    CHECK(b->path == "app");
    CHECK(b->abstract);

    auto c = parse_listen_address("unixgram:/run/log.sock");
    REQUIRE(c);
    CHECK(c->kind == SocketKind::unix_dgram);
    CHECK(!c->listens());

    auto d = parse_listen_address("unixgram:@log");
    REQUIRE(d);
    CHECK(d->kind == SocketKind::unix_dgram);
    CHECK(d->abstract);

    auto e = parse_listen_address("unixpacket:/run/p.sock");
    REQUIRE(e);
    CHECK(e->kind == SocketKind::unix_seqpacket);
    CHECK(e->listens());

    auto f = parse_listen_address("unixpacket:@p");
    REQUIRE(f);
    CHECK(f->kind == SocketKind::unix_seqpacket);
    CHECK(f->abstract);
    CHECK(f->path == "p");
}

TEST_CASE("parse: longest allowed unix path and abstract name") {
    std::string path = "/" + std::string(106, 'a');  // 107 bytes
    auto a = parse_listen_address("unix:" + path);
    REQUIRE(a);
    CHECK(a->path == path);
    auto b = parse_listen_address("unix:@" + std::string(106, 'n'));
    REQUIRE(b);
    CHECK(b->path.size() == 106);
}

TEST_CASE("parse: errors say what is wrong") {
    CHECK(parse_error("tcp://x") == "invalid listen address \"tcp://x\": expected HOST:PORT");
    CHECK(parse_error("http://x:80") ==
          "unknown scheme \"http\" (use tcp://, udp://, unix:, unixgram:, unixpacket:)");
    CHECK(parse_error("tcp://127.0.0.1:70000") == "port 70000 out of range");
    CHECK(parse_error("tcp://127.0.0.1:99999999999999999999") ==
          "port 99999999999999999999 out of range");
    CHECK(parse_error("unix:/" + std::string(119, 'a')) ==
          "unix socket path too long (120 bytes, max 107)");
    CHECK(parse_error("unix:@" + std::string(107, 'a')) ==
          "abstract socket name too long (107 bytes, max 106)");

    CHECK(parse_error("").find("empty") != std::string::npos);
    CHECK(parse_error("127.0.0.1:80").find("missing scheme") != std::string::npos);
    CHECK(parse_error("/run/x.sock").find("missing scheme") != std::string::npos);
    CHECK(parse_error("tcp:127.0.0.1:80").find("expected tcp://HOST:PORT") != std::string::npos);
    CHECK(parse_error("tcp://127.0.0.1:").find("missing port") != std::string::npos);
    CHECK(parse_error("tcp://127.0.0.1:http").find("invalid port \"http\"") != std::string::npos);
    CHECK(parse_error("tcp://127.0.0.1:-1").find("invalid port") != std::string::npos);
    CHECK(parse_error("tcp://:80").find("missing host") != std::string::npos);
    CHECK(parse_error("tcp://[]:80").find("missing host") != std::string::npos);
    CHECK(parse_error("tcp://::1:80").find("must be in brackets") != std::string::npos);
    CHECK(parse_error("tcp://[::1]").find("expected [V6ADDR]:PORT") != std::string::npos);
    CHECK(parse_error("tcp://[::1:80").find("missing ']'") != std::string::npos);
    CHECK(parse_error("tcp://[127.0.0.1]:80").find("invalid IPv6 address") != std::string::npos);
    CHECK(parse_error("tcp://a b:80").find("invalid host") != std::string::npos);
    CHECK(parse_error("udp://x").find("expected HOST:PORT") != std::string::npos);
    CHECK(parse_error("unix:").find("expected unix:/path or unix:@name") != std::string::npos);
    CHECK(parse_error("unix:run/x.sock").find("must be absolute") != std::string::npos);
    CHECK(parse_error("unix:@").find("abstract socket name is empty") != std::string::npos);
    CHECK(parse_error("unixgram:").find("unixgram:/path") != std::string::npos);
    CHECK(parse_error(std::string("unix:/a\0b", 9)).find("NUL") != std::string::npos);
}

TEST_CASE("socket_kind_name") {
    CHECK(std::string(fdsup::socket_kind_name(SocketKind::tcp)) == "tcp");
    CHECK(std::string(fdsup::socket_kind_name(SocketKind::udp)) == "udp");
    CHECK(std::string(fdsup::socket_kind_name(SocketKind::unix_stream)) == "unix");
    CHECK(std::string(fdsup::socket_kind_name(SocketKind::unix_dgram)) == "unixgram");
    CHECK(std::string(fdsup::socket_kind_name(SocketKind::unix_seqpacket)) == "unixpacket");
}

