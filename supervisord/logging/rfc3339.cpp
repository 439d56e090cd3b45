#include "logging/rfc3339.h"

#include <cstdio>
#include <ctime>

namespace fdsup {

std::string rfc3339_utc(std::chrono::system_clock::time_point time) {
    using namespace std::chrono;
    auto micros = duration_cast<microseconds>(time.time_since_epoch()).count();
    auto seconds = micros / 1000000;
    auto fraction = micros % 1000000;
    if (fraction < 0) {  // before 1970: floor, not truncate
        fraction += 1000000;
        seconds -= 1;
    }
    std::time_t whole = static_cast<std::time_t>(seconds);
    std::tm utc{};
    gmtime_r(&whole, &utc);
    char buffer[64];
    size_t length = std::strftime(buffer, sizeof buffer, "%Y-%m-%dT%H:%M:%S", &utc);
    std::snprintf(buffer + length, sizeof buffer - length, ".%06lldZ", static_cast<long long>(fraction));
    return buffer;
}

}  // namespace fdsup
