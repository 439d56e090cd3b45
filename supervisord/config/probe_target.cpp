#include "config/probe_target.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <cctype>

namespace fdsup::config {

namespace {

constexpr const char* kTcpForms = "use HOST:PORT, [V6]:PORT, unix:/path, unix:@name or /path";

std::string quoted(std::string_view s) { return "\"" + std::string(s) + "\""; }

// `noun` is "probe target" or "probe URL"; `written` the string as the user wrote it.
std::unexpected<Error> invalid(std::string_view noun, std::string_view written, std::string_view what) {
    return fail("invalid " + std::string(noun) + " " + quoted(written) + ": " + std::string(what));
}

// parse_listen_address's errors quote the listen string made from the target and call
// it a listen address: say it of the target as written instead.
std::unexpected<Error> reworded(const Error& error, std::string_view listen, std::string_view noun,
                                std::string_view written) {
    std::string prefix = "invalid listen address " + quoted(listen) + ": ";
    std::string_view what = error.message;
    if (what.starts_with(prefix)) what.remove_prefix(prefix.size());
    return invalid(noun, written, what);
}

// Host names and URL schemes are case-insensitive.
std::string lower(std::string_view text) {
    std::string out(text);
    for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

// HOST:PORT or [V6]:PORT (no scheme) -> a tcp address with a numeric host and a port
// a worker can listen on.
Result<ListenAddress> parse_inet_target(std::string_view host_port, std::string_view noun,
                                        std::string_view written) {
    if (!host_port.starts_with('[') && std::count(host_port.begin(), host_port.end(), ':') > 1)
        return invalid(noun, written, "an IPv6 address must be in brackets, as in [::1]:9000");
    std::string listen = "tcp://" + std::string(host_port);
    auto address = parse_listen_address(listen);
    if (!address) return reworded(address.error(), listen, noun, written);
    if (lower(address->host) == "localhost") {
        address->host = "127.0.0.1";
    } else {
        in6_addr scratch{};
        int family = address->host.find(':') == std::string::npos ? AF_INET : AF_INET6;
        if (inet_pton(family, address->host.c_str(), &scratch) != 1)
            return invalid(noun, written,
                           "a probe host must be a numeric address or \"localhost\" (fdsupd resolves no "
                           "names on its loop)");
    }
    if (address->port == 0) return invalid(noun, written, "port 0: a probe needs the port the worker listens on (1-65535)");
    return address;
}

// unix:/path or unix:@name -> a unix stream address.
Result<ListenAddress> parse_unix_target(std::string_view listen, std::string_view noun, std::string_view written) {
    auto address = parse_listen_address(listen);
    if (!address) return reworded(address.error(), listen, noun, written);
    return address;
}

// The request target goes into the request line as is: a space, CR or LF there would
// let the config write a request of its own (request smuggling), other control bytes
// and non-ASCII ones are not valid in it either.
Result<void> check_request_path(std::string_view path, std::string_view written) {
    for (char c : path) {
        auto byte = static_cast<unsigned char>(c);
        if (byte <= 0x20 || byte >= 0x7f)
            return invalid("probe URL", written,
                           "the path must not contain spaces, control characters or non-ASCII bytes "
                           "(percent-encode them)");
    }
    if (path.find('#') != std::string_view::npos)
        return invalid("probe URL", written, "a #fragment is never sent to the server: remove it");
    return {};
}

// After "http://unix:": /path/to.sock[:/PATH] or @name[:/PATH].
Result<HttpUrl> parse_unix_url(std::string_view rest, std::string_view written) {
    size_t colon = rest.find(':', 5);  // past "unix:"
    std::string_view socket = rest.substr(0, colon);
    std::string_view path = colon == std::string_view::npos ? "" : rest.substr(colon + 1);
    if (!path.empty() && !path.starts_with('/'))
        return invalid("probe URL", written,
                       "expected http://unix:/path/to.sock:/PATH (the request path after the socket's, "
                       "starting with '/')");
    auto address = parse_unix_target(socket, "probe URL", written);
    if (!address) return std::unexpected(address.error());
    HttpUrl url{std::move(*address), "localhost", path.empty() ? "/" : std::string(path)};
    if (auto ok = check_request_path(url.path, written); !ok) return std::unexpected(ok.error());
    return url;
}

// After "http://": HOST[:PORT][/PATH][?QUERY].
Result<HttpUrl> parse_inet_url(std::string_view rest, std::string_view written) {
    size_t end = rest.find_first_of("/?#");
    std::string_view authority = rest.substr(0, end);
    std::string_view target = end == std::string_view::npos ? "" : rest.substr(end);
    if (authority.empty()) return invalid("probe URL", written, "missing host");
    if (authority.find('@') != std::string_view::npos)
        return invalid("probe URL", written, "user:password@ in a probe URL is not supported");
    // The port is optional in a URL: 80 when none is written.
    size_t host_end = authority.starts_with('[') ? authority.find(']') : 0;
    bool has_port = host_end != std::string_view::npos &&
                    authority.find(':', host_end) != std::string_view::npos;
    std::string host_port(authority);
    if (!has_port) host_port += ":80";
    auto address = parse_inet_target(host_port, "probe URL", written);
    if (!address) return std::unexpected(address.error());

    HttpUrl url{std::move(*address), std::string(authority), std::string(target)};
    if (url.path.empty() || url.path.starts_with('?')) url.path.insert(0, "/");
    if (auto ok = check_request_path(url.path, written); !ok) return std::unexpected(ok.error());
    return url;
}

}  // namespace

Result<ListenAddress> parse_tcp_target(std::string_view text) {
    constexpr std::string_view noun = "probe target";
    if (text.empty()) return fail(std::string("a tcp probe target is empty (") + kTcpForms + ")");
    if (text.starts_with("unix:")) return parse_unix_target(text, noun, text);
    if (text.starts_with('/')) return parse_unix_target("unix:" + std::string(text), noun, text);
    if (text.starts_with("unixgram:") || text.starts_with("unixpacket:"))
        return invalid(noun, text, "a tcp probe connects to a stream socket: use unix:/path or unix:@name");
    if (text.find("://") != std::string_view::npos)
        return invalid(noun, text, std::string("a tcp target has no scheme (") + kTcpForms + ")");
    return parse_inet_target(text, noun, text);
}

Result<HttpUrl> parse_http_url(std::string_view text) {
    constexpr std::string_view noun = "probe URL";
    size_t separator = text.find("://");
    if (separator == std::string_view::npos) return invalid(noun, text, "expected http://HOST[:PORT][/PATH]");
    std::string scheme = lower(text.substr(0, separator));
    if (scheme == "https")
        return invalid(noun, text,
                       "https is not supported: fdsupd speaks no TLS (probe a plain-http port, or use "
                       "exec = [\"curl\", ...])");
    if (scheme != "http") return invalid(noun, text, "unsupported scheme " + quoted(scheme) + " (only http://)");
    std::string_view rest = text.substr(separator + 3);
    if (rest.starts_with("unix:")) return parse_unix_url(rest, text);
    return parse_inet_url(rest, text);
}

std::string describe(const HttpUrl& url) {
    const ListenAddress& a = url.address;
    if (a.is_unix()) return "http://unix:" + std::string(a.abstract ? "@" : "") + a.path + ":" + url.path;
    return "http://" + url.host_header + url.path;
}

}  // namespace fdsup::config
