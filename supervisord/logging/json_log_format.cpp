#include "logging/json_log_format.h"

#include <string_view>

#include "json/json_writer.h"
#include "logging/log_subject.h"
#include "logging/rfc3339.h"

namespace fdsup {

void JsonLogFormatter::format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) {
    const LogSubject* subject = LogAbout::current();
    std::string out;
    out.reserve(msg.payload.size() + 160);
    out += "{\"time\":\"";
    out += rfc3339_utc(msg.time);
    out += "\",\"level\":";
    auto level = spdlog::level::to_string_view(msg.level);
    append_json_string(out, std::string_view(level.data(), level.size()));
    out += ",\"worker\":";
    if (subject != nullptr && !subject->worker.empty()) append_json_string(out, subject->worker);
    else out += "null";
    out += ",\"instance\":";
    out += subject != nullptr && subject->instance >= 0 ? std::to_string(subject->instance) : "null";
    out += ",\"pid\":";
    out += subject != nullptr && subject->pid > 0 ? std::to_string(subject->pid) : "null";
    std::string_view message(msg.payload.data(), msg.payload.size());
    if (subject != nullptr && subject->stream != nullptr) {
        out += ",\"stream\":";
        append_json_string(out, subject->stream);
        message = subject->output;
    }
    out += ",\"message\":";
    append_json_string(out, message);
    out += "}\n";
    dest.append(out.data(), out.data() + out.size());
}

}  // namespace fdsup
