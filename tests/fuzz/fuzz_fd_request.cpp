// libFuzzer target: the fd socket's request parser. Any line gives a request or an
// error; a request never asks for more names than allowed, and a store request's name
// is a valid fd name.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "fdserver/fd_request.h"
#include "fdstore/fd_name.h"

using fdsup::fdserver::FdRequest;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    auto request = fdsup::fdserver::parse_fd_request(std::string_view(reinterpret_cast<const char*>(data), size));
    if (!request) {
        if (request.error().text().empty()) std::abort();
        return 0;
    }
    if (request->names.size() > fdsup::fdserver::kMaxNamesPerRequest) std::abort();
    if (request->kind == FdRequest::Kind::get && request->names.empty()) std::abort();
    if (request->kind == FdRequest::Kind::store && !fdsup::valid_fd_name(request->store_name)) std::abort();
    return 0;
}
