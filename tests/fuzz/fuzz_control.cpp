// libFuzzer target: the control protocol decoder, as the control server runs it on what
// a client sends: the byte stream split into lines (over-long ones skipped), each line
// decoded, the request fields read. A decoded value must survive encode -> decode
// unchanged (the reply path uses the same codec).
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "control/protocol.h"

using fdsup::control::Json;

namespace {

// 1e999 decodes to infinity, which JSON cannot say: it encodes as null. Such values are
// left out of the round-trip check (the reply path never sends a number it did not make).
bool all_finite(const Json& value) {
    if (value.is_number_float()) return std::isfinite(value.get<double>());
    if (value.is_structured())
        for (const auto& item : value)
            if (!all_finite(item)) return false;
    return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    // Small lines, so the over-long path is reached by short inputs too.
    fdsup::control::LineSplitter splitter(256);
    std::string_view bytes(reinterpret_cast<const char*>(data), size);
    // In two pieces, as a stream arrives: a line may straddle them.
    splitter.feed(bytes.substr(0, size / 2));
    splitter.feed(bytes.substr(size / 2));
    while (auto line = splitter.next()) {
        if (line->too_long) {
            if (!line->text.empty()) std::abort();
            continue;
        }
        if (line->text.size() > 256) std::abort();
        auto request = fdsup::control::decode_line(line->text);
        if (!request) continue;
        (void)fdsup::control::string_field(*request, "cmd");
        (void)fdsup::control::names_field(*request, "names", false);
        (void)fdsup::control::optional_int_field(*request, "instances");
        (void)fdsup::control::bool_field(*request, "follow", false);
        if (!all_finite(*request)) continue;
        std::string encoded = fdsup::control::encode_line(*request);
        if (encoded.empty() || encoded.back() != '\n') std::abort();
        auto again = fdsup::control::decode_line(std::string_view(encoded).substr(0, encoded.size() - 1));
        if (!again || *again != *request) std::abort();
    }
    return 0;
}
