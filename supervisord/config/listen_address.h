// ListenAddress: the parsed form of a socket's `listen` string.
//
//   tcp://HOST:PORT   tcp://[V6]:PORT   udp://HOST:PORT
//   unix:/path        unix:@abstract    unixgram:/path    unixpacket:/path
//
// HOST is a numeric address or a name (resolved when the socket is bound); PORT is
// 0..65535 (0: the kernel picks one).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "sys/result.h"

namespace fdsup {

enum class SocketKind { tcp, udp, unix_stream, unix_dgram, unix_seqpacket };

struct ListenAddress {
    SocketKind kind = SocketKind::tcp;
    std::string host;     // tcp/udp: without brackets ("::" for "[::]")
    uint16_t port = 0;    // tcp/udp
    std::string path;     // unix*: the path, or the abstract name without '@'
    bool abstract = false;

    bool is_inet() const { return kind == SocketKind::tcp || kind == SocketKind::udp; }
    bool is_unix() const { return !is_inet(); }
    // Stream sockets (tcp, unix, unixpacket) listen(); datagram sockets do not.
    bool listens() const { return kind != SocketKind::udp && kind != SocketKind::unix_dgram; }

    bool operator==(const ListenAddress&) const = default;
};

// Parses a `listen` string; the error message says what is wrong with it.
Result<ListenAddress> parse_listen_address(std::string_view text);

// "tcp", "udp", "unix", "unixgram", "unixpacket"
const char* socket_kind_name(SocketKind kind);

}  // namespace fdsup
