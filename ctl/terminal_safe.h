// What fdsupctl prints of text it did not write: a worker's output (`logs`) and its
// sd_notify STATUS= messages (`status`) reach the operator's terminal, and must not be
// able to drive it (clear the screen, move the cursor, retitle the window, overwrite a
// line with a carriage return).
#pragma once

#include <string>
#include <string_view>

namespace fdsup::ctl {

// `text` with the control characters a terminal would act on shown escaped: C0 but tab
// and newline as \x1b, DEL as \x7f, C1 in UTF-8 (0xC2 0x80-0x9F, e.g. CSI) as \u009b.
// (A worker's line never holds a newline: output is split at them, as are notify
// messages; the newlines kept are in the texts fdsupd composes, e.g. a pre-flight's.)
std::string terminal_safe(std::string_view text);

// A JSON text (`--json` replies, `logs -f --json` lines) with DEL and C1 controls, which
// JSON allows raw in strings, written as \u007f and \u0080-\u009f: the same JSON to a
// parser, inert on a terminal. (Only strings can hold these bytes; fdsupd's writer
// escapes C0 itself.)
std::string json_terminal_safe(std::string_view json);
// The same, handing `json` back as it is if it holds neither (a reply of megabytes is not copied).
std::string json_terminal_safe_owned(std::string json);

}  // namespace fdsup::ctl
