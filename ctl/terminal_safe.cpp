#include "ctl/terminal_safe.h"

#include <algorithm>
#include <cstdio>

namespace fdsup::ctl {
namespace {

// C1 controls in UTF-8 are 0xC2 0x80-0x9F (0xC2 0x9B is a CSI, like ESC [).
bool c1_control_at(std::string_view text, size_t i) {
    return static_cast<unsigned char>(text[i]) == 0xC2 && i + 1 < text.size() &&
           (static_cast<unsigned char>(text[i + 1]) & 0xE0) == 0x80;
}

}  // namespace

std::string terminal_safe(std::string_view text) {
    std::string safe;
    safe.reserve(text.size());
    for (size_t i = 0; i < text.size(); ++i) {
        auto byte = static_cast<unsigned char>(text[i]);
        bool c1 = c1_control_at(text, i);
        if ((byte < 0x20 && byte != '\t' && byte != '\n') || byte == 0x7F || c1) {
            char escaped[8];
            unsigned code = c1 ? static_cast<unsigned char>(text[++i]) : byte;
            std::snprintf(escaped, sizeof escaped, c1 ? "\\u%04x" : "\\x%02x", code);
            safe += escaped;
        } else {
            safe += text[i];
        }
    }
    return safe;
}

namespace {

// Where the first byte json_terminal_safe may change is (memchr is vectorised; a status
// of 10,000 instances is megabytes).
size_t first_to_escape(std::string_view json) { return std::min(json.find('\x7F'), json.find('\xC2')); }

}  // namespace

std::string json_terminal_safe_owned(std::string json) {
    if (first_to_escape(json) == std::string_view::npos) return json;
    return json_terminal_safe(std::string_view(json));
}

std::string json_terminal_safe(std::string_view json) {
    // Most replies have neither byte: copied whole up to the first one.
    size_t first = first_to_escape(json);
    if (first == std::string_view::npos) return std::string(json);
    std::string safe;
    safe.reserve(json.size());
    safe.append(json.substr(0, first));
    for (size_t i = first; i < json.size(); ++i) {
        auto byte = static_cast<unsigned char>(json[i]);
        bool c1 = c1_control_at(json, i);
        if (byte == 0x7F || c1) {
            char escaped[8];
            std::snprintf(escaped, sizeof escaped, "\\u%04x", c1 ? static_cast<unsigned char>(json[++i]) : byte);
            safe += escaped;
        } else {
            safe += json[i];
        }
    }
    return safe;
}

}  // namespace fdsup::ctl
