// A request on the fd socket, parsed (fd_server.h has the wire format). Pure: the
// line in, the request or the reason it is refused out; no fds, no state. Fuzzed by
// tests/fuzz/fuzz_fd_request.cpp.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "sys/result.h"

namespace fdsup::fdserver {

constexpr size_t kMaxNamesPerRequest = 256;

struct FdRequest {
    enum class Kind { get, store };
    Kind kind = Kind::get;
    std::vector<std::string> names;  // get: the sockets asked for, in order (may repeat)
    std::string store_name = "stored";  // store: FDNAME of the fds that come with it
    bool poll = true;                   // store: false is FDPOLL=0
};

// One request line (without its "\n").
Result<FdRequest> parse_fd_request(std::string_view line);

}  // namespace fdsup::fdserver
