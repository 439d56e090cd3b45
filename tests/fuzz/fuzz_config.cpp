// libFuzzer target: the config loader (TOML text -> validated Config or errors). Every
// input must give either a config or at least one error that names a place in the file,
// never both, never neither, and never a crash.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "config/loader.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string_view text(reinterpret_cast<const char*>(data), size);
    auto result = fdsup::config::load_config_string(text, "fuzz.toml");
    if (result.config.has_value() == !result.errors.empty()) std::abort();
    for (const auto& error : result.errors)
        if (error.file != "fuzz.toml" || error.message.empty()) std::abort();
    return 0;
}
