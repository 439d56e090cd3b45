#include "control/event_json.h"

#include <type_traits>

namespace fdsup::control {

Json event_json(const Event& event) {
    Json j{{"seq", event.seq},
           {"time", std::chrono::duration<double>(event.time.time_since_epoch()).count()},
           {"worker", event.worker.empty() ? Json(nullptr) : Json(event.worker)},
           {"instance", event.instance < 0 ? Json(nullptr) : Json(event.instance)},
           {"pid", event.pid <= 0 ? Json(nullptr) : Json(event.pid)},
           {"event", event_name(event.kind)}};
    for (const auto& [key, value] : event.fields)
        j[key] = std::visit([](const auto& v) -> Json {
            if constexpr (std::is_same_v<std::decay_t<decltype(v)>, std::nullptr_t>) return Json(nullptr);
            else return Json(v);
        }, value);
    return j;
}

}  // namespace fdsup::control
