#include "fdserver/fd_request.h"

#include "control/protocol.h"
#include "fdstore/fd_name.h"

namespace fdsup::fdserver {

Result<FdRequest> parse_fd_request(std::string_view line) {
    auto request = control::decode_line(line);
    if (!request) return std::unexpected(request.error());
    auto cmd = control::string_field(*request, "cmd");
    if (!cmd) return std::unexpected(cmd.error());
    FdRequest parsed;
    if (*cmd == "get") {
        auto names = control::names_field(*request, "names", true);
        if (!names) return std::unexpected(names.error());
        if (names->size() > kMaxNamesPerRequest)
            return fail("too many names (at most " + std::to_string(kMaxNamesPerRequest) + ")");
        parsed.names = std::move(*names);
        return parsed;
    }
    if (*cmd != "store") return fail("unknown command \"" + *cmd + "\" (this fdsupd knows: get, store)");
    parsed.kind = FdRequest::Kind::store;
    if (request->contains("name")) {
        auto given = control::string_field(*request, "name");
        if (!given) return std::unexpected(given.error());
        if (!valid_fd_name(*given))
            return fail("\"name\" must be 1-255 printable ASCII characters without ':'");
        parsed.store_name = std::move(*given);
    }
    if (request->contains("poll")) {
        const control::Json& value = (*request)["poll"];
        if (!value.is_boolean()) return fail("\"poll\" must be true or false");
        parsed.poll = value.get<bool>();
    }
    return parsed;
}

}  // namespace fdsup::fdserver
