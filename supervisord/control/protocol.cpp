#include "control/protocol.h"

#include "control/json_skim.h"

namespace fdsup::control {

Result<Json> decode_line(std::string_view line) {
    // allow_exceptions = false: a parse error gives a "discarded" value instead.
    Json value = Json::parse(line.begin(), line.end(), nullptr, false);
    if (value.is_discarded()) return fail("invalid JSON");
    if (!value.is_object()) return fail("a request must be a JSON object");
    return value;
}

Result<Json> decode_line_without(std::string_view line, std::string_view skipped) {
    // The skimmer checks the whole line, several times faster than nlohmann's lexer, and
    // finds the member; nlohmann then builds the rest, with "null" in the member's place,
    // which is then taken out.
    Skimmed skimmed = skim_json(line, skipped);
    if (!skimmed.valid) return fail("invalid JSON");
    if (!skimmed.object) return fail("a request must be a JSON object");
    std::string rest;
    if (skimmed.member) {
        auto [begin, end] = *skimmed.member;
        rest.reserve(line.size() - (end - begin) + 4);
        rest.append(line.substr(0, begin)).append("null").append(line.substr(end));
        line = rest;
    }
    auto value = decode_line(line);
    if (value) value->erase(std::string(skipped));  // a repeated key was one member anyway
    return value;
}

std::string encode_line(const Json& value) {
    std::string line = value.dump(-1, ' ', false, Json::error_handler_t::replace);
    line += '\n';
    return line;
}

Json error_reply(std::string message) {
    return Json{{"ok", false}, {"error", std::move(message)}};
}

void LineSplitter::feed(std::string_view bytes) {
    while (!bytes.empty()) {
        if (skipping_) {
            auto newline = bytes.find('\n');
            if (newline == std::string_view::npos) return;  // still inside the long line
            bytes.remove_prefix(newline + 1);
            skipping_ = false;
            continue;
        }
        // Compact before appending, so the buffer holds at most one partial line plus
        // what this feed brings.
        if (start_ > 0) {
            buffer_.erase(0, start_);
            for (auto& at : overlong_at_) at -= start_;  // never before start_: see next()
            start_ = 0;
        }
        buffer_.append(bytes);
        bytes = {};
        // Complete lines are handed out by next(); only the trailing partial line
        // can be over the limit here.
        auto last_newline = buffer_.rfind('\n');
        size_t partial = last_newline == std::string::npos ? buffer_.size() : buffer_.size() - last_newline - 1;
        if (partial > max_line_) {
            // Keep the complete lines before it; drop the partial and skip its rest.
            buffer_.resize(last_newline == std::string::npos ? 0 : last_newline + 1);
            overlong_at_.push_back(buffer_.size());
            skipping_ = true;
        }
    }
}

std::optional<LineSplitter::Line> LineSplitter::next() {
    if (!overlong_at_.empty() && overlong_at_.front() == start_) {
        overlong_at_.erase(overlong_at_.begin());
        return Line{{}, true};
    }
    auto newline = buffer_.find('\n', start_);
    if (newline == std::string::npos) return std::nullopt;
    size_t length = newline - start_;
    if (length > max_line_) {  // a complete line that arrived in one piece
        start_ = newline + 1;
        return Line{{}, true};
    }
    Line line{buffer_.substr(start_, length), false};
    start_ = newline + 1;
    return line;
}

Result<std::string> string_field(const Json& request, const char* key) {
    auto it = request.find(key);
    if (it == request.end()) return fail(std::string("missing field \"") + key + "\"");
    if (!it->is_string() || it->get_ref<const std::string&>().empty())
        return fail(std::string("field \"") + key + "\" must be a non-empty string");
    return it->get<std::string>();
}

Result<std::vector<std::string>> names_field(const Json& request, const char* key, bool required) {
    auto it = request.find(key);
    if (it == request.end()) {
        if (required) return fail(std::string("missing field \"") + key + "\"");
        return std::vector<std::string>{};
    }
    std::string must = std::string("field \"") + key + "\" must be a list of worker names";
    if (!it->is_array()) return fail(must);
    std::vector<std::string> names;
    for (const auto& item : *it) {
        if (!item.is_string() || item.get_ref<const std::string&>().empty()) return fail(must);
        names.push_back(item.get<std::string>());
    }
    if (required && names.empty()) return fail(std::string("field \"") + key + "\" must name at least one worker");
    return names;
}

Result<std::optional<long long>> optional_int_field(const Json& request, const char* key) {
    auto it = request.find(key);
    if (it == request.end() || it->is_null()) return std::optional<long long>{};
    if (!it->is_number_integer()) return fail(std::string("field \"") + key + "\" must be an integer");
    return std::optional<long long>{it->get<long long>()};
}

Result<bool> bool_field(const Json& request, const char* key, bool default_value) {
    auto it = request.find(key);
    if (it == request.end() || it->is_null()) return default_value;
    if (!it->is_boolean()) return fail(std::string("field \"") + key + "\" must be true or false");
    return it->get<bool>();
}

}  // namespace fdsup::control
