// libFuzzer target: the sd_notify datagram parser. Any datagram gives a message or an
// error, never a crash; a message's FDNAME is always a valid fd name.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "fdstore/fd_name.h"
#include "notify/notify_message.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    auto message = fdsup::notify::parse_notify_message(std::string_view(reinterpret_cast<const char*>(data), size));
    if (message && message->fd_name && !fdsup::valid_fd_name(*message->fd_name)) std::abort();
    if (!message && message.error().text().empty()) std::abort();
    return 0;
}
