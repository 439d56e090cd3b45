#include "health/proc_text.h"

#include <charconv>

namespace fdsup::health {
namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n'; }

// The number at the start of `text`, in `base`, that must run to its end or to a space.
template <class T>
std::optional<T> number_token(std::string_view text, int base) {
    size_t end = 0;
    while (end < text.size() && !is_space(text[end])) ++end;
    T value{};
    auto [ptr, ec] = std::from_chars(text.data(), text.data() + end, value, base);
    if (ec != std::errc() || ptr != text.data() + end || end == 0) return std::nullopt;
    return value;
}

// The value after "key:" in a line of "key: value" fields, where the key begins the
// line or follows a space (so "ino:" is not found inside "xino:") and any padding may
// stand between the colon and the value.
std::optional<std::string_view> field(std::string_view line, std::string_view key) {
    for (size_t at = line.find(key); at != std::string_view::npos; at = line.find(key, at + 1)) {
        if (at > 0 && !is_space(line[at - 1])) continue;
        std::string_view rest = line.substr(at + key.size());
        while (!rest.empty() && is_space(rest.front())) rest.remove_prefix(1);
        return rest;
    }
    return std::nullopt;
}

// "0x1f" or "1f".
std::optional<uint64_t> hex_token(std::string_view text) {
    if (text.starts_with("0x")) text.remove_prefix(2);
    return number_token<uint64_t>(text, 16);
}

}  // namespace

std::optional<EpollTarget> parse_epoll_target(std::string_view line) {
    if (!line.starts_with("tfd:")) return std::nullopt;
    auto fd = field(line, "tfd:"), events = field(line, "events:"), inode = field(line, "ino:");
    if (!fd || !events || !inode) return std::nullopt;
    auto fd_value = number_token<int>(*fd, 10);
    auto events_value = number_token<uint32_t>(*events, 16);
    auto inode_value = hex_token(*inode);
    if (!fd_value || *fd_value < 0 || !events_value || !inode_value) return std::nullopt;
    return EpollTarget{*fd_value, *events_value, *inode_value};
}

std::optional<SyscallLine> parse_syscall_line(std::string_view text) {
    SyscallLine line;
    auto next_token = [&]() {
        while (!text.empty() && is_space(text.front())) text.remove_prefix(1);
        size_t end = 0;
        while (end < text.size() && !is_space(text[end])) ++end;
        std::string_view token = text.substr(0, end);
        text.remove_prefix(end);
        return token;
    };
    auto number = number_token<long>(next_token(), 10);  // "running" and "-1" end here
    if (!number || *number < 0) return std::nullopt;
    line.number = *number;
    for (auto& arg : line.args) {
        auto value = hex_token(next_token());
        if (!value) return std::nullopt;
        arg = *value;
    }
    return line;
}

std::optional<ino_t> parse_socket_link(std::string_view link) {
    if (!link.starts_with("socket:[") || !link.ends_with("]")) return std::nullopt;
    link = link.substr(8, link.size() - 9);
    auto inode = number_token<uint64_t>(link, 10);
    if (!inode) return std::nullopt;
    return static_cast<ino_t>(*inode);
}

}  // namespace fdsup::health
