#include "output/journal_entry.h"

namespace fdsup {

LinePriority parse_line_priority(std::string_view line, bool from_stderr) {
    if (line.size() >= 3 && line[0] == '<' && line[1] >= '0' && line[1] <= '7' && line[2] == '>')
        return {line[1] - '0', line.substr(3)};
    return {from_stderr ? kStderrPriority : kStdoutPriority, line};
}

void append_journal_field(std::string& datagram, std::string_view key, std::string_view value) {
    datagram.append(key);
    if (value.find_first_of(std::string_view("\n\0", 2)) == std::string_view::npos) {
        datagram.push_back('=');
        datagram.append(value);
    } else {
        datagram.push_back('\n');
        uint64_t length = value.size();
        for (int i = 0; i < 8; ++i) datagram.push_back(static_cast<char>((length >> (8 * i)) & 0xff));  // little-endian
        datagram.append(value);
    }
    datagram.push_back('\n');
}

}  // namespace fdsup
