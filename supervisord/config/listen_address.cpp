#include "config/listen_address.h"

#include <arpa/inet.h>
#include <sys/un.h>

#include <charconv>
#include <cstddef>

namespace fdsup {

namespace {

constexpr const char* kSchemes = "(use tcp://, udp://, unix:, unixgram:, unixpacket:)";

// sun_path is 108 bytes: a path needs its terminating NUL, an abstract name its leading one
// (and one more byte kept free, so the name can always be printed as a C string).
constexpr size_t kSunPathSize = sizeof(sockaddr_un{}.sun_path);
constexpr size_t kMaxPath = kSunPathSize - 1;      // 107
constexpr size_t kMaxAbstract = kSunPathSize - 2;  // 106

std::string quoted(std::string_view s) {
    std::string out = "\"";
    out += s;
    out += '"';
    return out;
}

std::string invalid(std::string_view text, std::string_view what) {
    return "invalid listen address " + quoted(text) + ": " + std::string(what);
}

bool is_scheme_char(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

// A name or a numeric IPv4 address: letters, digits, '.', '-', '_'.
bool is_host_char(char c) {
    return is_scheme_char(c) || (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_';
}

Result<uint16_t> parse_port(std::string_view text, std::string_view port) {
    if (port.empty()) return fail(invalid(text, "missing port"));
    for (char c : port)
        if (c < '0' || c > '9') return fail(invalid(text, "invalid port " + quoted(port)));
    unsigned long value = 0;
    auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (ec != std::errc() || end != port.data() + port.size() || value > 65535)
        return fail("port " + std::string(port) + " out of range");
    return static_cast<uint16_t>(value);
}

// After "tcp://" or "udp://": HOST:PORT or [V6ADDR]:PORT.
Result<void> parse_inet(std::string_view text, std::string_view rest, ListenAddress& out) {
    std::string_view host;
    std::string_view port;
    if (rest.starts_with('[')) {
        size_t close = rest.find(']');
        if (close == std::string_view::npos)
            return fail(invalid(text, "missing ']' after IPv6 address"));
        host = rest.substr(1, close - 1);
        std::string_view after = rest.substr(close + 1);
        if (!after.starts_with(':')) return fail(invalid(text, "expected [V6ADDR]:PORT"));
        port = after.substr(1);
        if (host.empty()) return fail(invalid(text, "missing host"));
        // An optional zone ("fe80::1%eth0") is left to getaddrinfo.
        std::string addr(host.substr(0, host.find('%')));
        in6_addr scratch{};
        if (inet_pton(AF_INET6, addr.c_str(), &scratch) != 1)
            return fail(invalid(text, "invalid IPv6 address " + quoted(host)));
    } else {
        size_t colon = rest.rfind(':');
        if (colon == std::string_view::npos) return fail(invalid(text, "expected HOST:PORT"));
        host = rest.substr(0, colon);
        port = rest.substr(colon + 1);
        if (host.find(':') != std::string_view::npos)
            return fail(invalid(text, "an IPv6 address must be in brackets, as in tcp://[::1]:80"));
        if (host.empty()) return fail(invalid(text, "missing host"));
        for (char c : host)
            if (!is_host_char(c)) return fail(invalid(text, "invalid host " + quoted(host)));
    }
    auto number = parse_port(text, port);
    if (!number) return std::unexpected(number.error());
    out.host = std::string(host);
    out.port = *number;
    return {};
}

// After "unix:", "unixgram:" or "unixpacket:": /absolute/path or @abstract.
Result<void> parse_unix(std::string_view text, std::string_view scheme, std::string_view rest,
                        ListenAddress& out) {
    if (rest.find('\0') != std::string_view::npos)
        return fail(invalid(text, "contains a NUL byte"));
    if (rest.starts_with('@')) {
        std::string_view name = rest.substr(1);
        if (name.empty()) return fail(invalid(text, "abstract socket name is empty"));
        if (name.size() > kMaxAbstract)
            return fail("abstract socket name too long (" + std::to_string(name.size()) +
                        " bytes, max " + std::to_string(kMaxAbstract) + ")");
        out.path = std::string(name);
        out.abstract = true;
        return {};
    }
    if (rest.empty())
        return fail(invalid(text, "expected " + std::string(scheme) + ":/path or " +
                                      std::string(scheme) + ":@name"));
    if (!rest.starts_with('/'))
        return fail(invalid(text, "unix socket path must be absolute"));
    if (rest.size() > kMaxPath)
        return fail("unix socket path too long (" + std::to_string(rest.size()) + " bytes, max " +
                    std::to_string(kMaxPath) + ")");
    out.path = std::string(rest);
    out.abstract = false;
    return {};
}

}  // namespace

Result<ListenAddress> parse_listen_address(std::string_view text) {
    if (text.empty()) return fail("listen address is empty " + std::string(kSchemes));
    size_t colon = text.find(':');
    std::string_view scheme = text.substr(0, colon == std::string_view::npos ? 0 : colon);
    bool scheme_ok = !scheme.empty();
    for (char c : scheme) scheme_ok = scheme_ok && is_scheme_char(c);
    if (!scheme_ok) return fail(invalid(text, std::string("missing scheme ") + kSchemes));
    std::string_view rest = text.substr(colon + 1);

    ListenAddress out;
    if (scheme == "tcp" || scheme == "udp") {
        out.kind = scheme == "tcp" ? SocketKind::tcp : SocketKind::udp;
        if (!rest.starts_with("//"))
            return fail(invalid(text, "expected " + std::string(scheme) + "://HOST:PORT"));
        auto ok = parse_inet(text, rest.substr(2), out);
        if (!ok) return std::unexpected(ok.error());
        return out;
    }
    if (scheme == "unix") {
        out.kind = SocketKind::unix_stream;
    } else if (scheme == "unixgram") {
        out.kind = SocketKind::unix_dgram;
    } else if (scheme == "unixpacket") {
        out.kind = SocketKind::unix_seqpacket;
    } else {
        return fail("unknown scheme " + quoted(scheme) + " " + kSchemes);
    }
    auto ok = parse_unix(text, scheme, rest, out);
    if (!ok) return std::unexpected(ok.error());
    return out;
}

const char* socket_kind_name(SocketKind kind) {
    switch (kind) {
        case SocketKind::tcp: return "tcp";
        case SocketKind::udp: return "udp";
        case SocketKind::unix_stream: return "unix";
        case SocketKind::unix_dgram: return "unixgram";
        case SocketKind::unix_seqpacket: return "unixpacket";
    }
    return "unknown";
}

}  // namespace fdsup
