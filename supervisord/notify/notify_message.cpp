#include "notify/notify_message.h"
#include "fdstore/fd_name.h"

#include <algorithm>
#include <charconv>
#include <climits>

namespace fdsup::notify {
namespace {

bool valid_key(std::string_view key) {
    if (key.empty()) return false;
    for (char c : key)
        if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_')) return false;
    return true;
}

std::optional<uint64_t> parse_unsigned(std::string_view text) {
    uint64_t value = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (text.empty() || ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
    return value;
}

// Printable UTF-8: no control characters (they would rewrite an operator's terminal
// when `fdsupctl status` shows the text), no overlong or surrogate encodings.
bool printable_utf8(std::string_view text) {
    size_t i = 0;
    while (i < text.size()) {
        auto c = static_cast<unsigned char>(text[i]);
        if (c < 0x80) {
            if (c < 0x20 || c == 0x7f) return false;
            ++i;
            continue;
        }
        size_t length;
        uint32_t code;
        if ((c & 0xe0) == 0xc0) length = 2, code = c & 0x1f;
        else if ((c & 0xf0) == 0xe0) length = 3, code = c & 0x0f;
        else if ((c & 0xf8) == 0xf0) length = 4, code = c & 0x07;
        else return false;
        if (i + length > text.size()) return false;
        for (size_t k = 1; k < length; ++k) {
            auto next = static_cast<unsigned char>(text[i + k]);
            if ((next & 0xc0) != 0x80) return false;
            code = (code << 6) | (next & 0x3f);
        }
        static constexpr uint32_t kSmallest[] = {0, 0, 0x80, 0x800, 0x10000};
        if (code < kSmallest[length] || code > 0x10ffff || (code >= 0xd800 && code <= 0xdfff)) return false;
        if (code >= 0x80 && code < 0xa0) return false;  // C1 controls
        i += length;
    }
    return true;
}

}  // namespace

Result<NotifyMessage> parse_notify_message(std::string_view datagram) {
    if (datagram.empty()) return fail("empty message");
    if (datagram.size() > kMaxMessageSize)
        return fail("message of " + std::to_string(datagram.size()) + " bytes (at most " +
                    std::to_string(kMaxMessageSize) + ")");
    if (datagram.find('\0') != std::string_view::npos) return fail("message contains a NUL byte");

    NotifyMessage message;
    int line_number = 0;
    size_t start = 0;
    while (start < datagram.size()) {
        size_t end = datagram.find('\n', start);
        if (end == std::string_view::npos) end = datagram.size();
        std::string_view line = datagram.substr(start, end - start);
        start = end + 1;
        ++line_number;
        if (line.empty()) continue;

        auto bad = [&](const std::string& why) {
            return fail("line " + std::to_string(line_number) + ": " + why);
        };
        size_t equals = line.find('=');
        if (equals == std::string_view::npos) return bad("not a KEY=VALUE assignment");
        std::string_view key = line.substr(0, equals);
        std::string_view value = line.substr(equals + 1);
        if (!valid_key(key)) return bad("invalid key (expected [A-Z0-9_]+)");

        auto flag = [&](bool& field) -> Result<void> {
            if (value != "1") return bad(std::string(key) + " must be 1");
            field = true;
            return {};
        };
        auto number = [&](std::optional<uint64_t>& field) -> Result<void> {
            auto parsed = parse_unsigned(value);
            if (!parsed) return bad(std::string(key) + " must be a non-negative integer");
            field = *parsed;
            return {};
        };
        Result<void> ok;
        if (key == "READY") ok = flag(message.ready);
        else if (key == "RELOADING") ok = flag(message.reloading);
        else if (key == "STOPPING") ok = flag(message.stopping);
        else if (key == "BARRIER") ok = flag(message.barrier);
        else if (key == "FDSTORE") ok = flag(message.fd_store);
        else if (key == "FDSTOREREMOVE") ok = flag(message.fd_store_remove);
        else if (key == "WATCHDOG") {
            if (value == "1") message.watchdog = WatchdogRequest::ping;
            else if (value == "trigger") message.watchdog = WatchdogRequest::trigger;
            else return bad("WATCHDOG must be 1 or trigger");
        } else if (key == "STATUS") {
            if (!printable_utf8(value)) return bad("STATUS is not printable UTF-8");
            message.status = std::string(value);
        } else if (key == "FDNAME") {
            if (!valid_fd_name(value)) return bad("FDNAME must be 1-255 printable ASCII characters without ':'");
            message.fd_name = std::string(value);
        } else if (key == "FDPOLL") {
            if (value != "0" && value != "1") return bad("FDPOLL must be 0 or 1");
            message.fd_poll = value == "1";
        } else if (key == "EXTEND_TIMEOUT_USEC") ok = number(message.extend_timeout_usec);
        else if (key == "WATCHDOG_USEC") ok = number(message.watchdog_usec);
        else if (key == "MONOTONIC_USEC") ok = number(message.monotonic_usec);
        else if (key == "MAINPID") {
            auto parsed = parse_unsigned(value);
            if (!parsed || *parsed == 0 || *parsed > static_cast<uint64_t>(INT_MAX))
                return bad("MAINPID must be a positive pid");
            message.main_pid = static_cast<pid_t>(*parsed);
        } else if (key == "ERRNO") {
            auto parsed = parse_unsigned(value);
            if (!parsed || *parsed > static_cast<uint64_t>(INT_MAX)) return bad("ERRNO must be a non-negative integer");
            message.errno_value = static_cast<int>(*parsed);
        } else {
            message.ignored_keys.emplace_back(key);
        }
        if (!ok) return std::unexpected(ok.error());
    }
    return message;
}

}  // namespace fdsup::notify
