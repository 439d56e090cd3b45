// fdsupctl top on a terminal: a full screen drawn with ncurses, redrawn every interval
// and at once on a key or a resize.
//
// ncurses (Debian's libncursesw6) knows through terminfo every terminal an ssh session
// brings, the alternate screen that gives the shell its lines back on exit, and window
// size changes (KEY_RESIZE); the drawing uses A_BOLD and A_REVERSE only, no colours, and
// fits 80x24. Keys: q quits (Ctrl-C, SIGTERM and SIGHUP too, the terminal restored); c,
// m, n, r, u sort; the arrow keys, PgUp/PgDn, Home/End scroll.
#pragma once

#include <optional>

#include "ctl/status_feed.h"
#include "ctl/top.h"

namespace fdsup::ctl {

// Runs the screen from the `first` frame (fetched) until a quit or plan.iterations
// frames: the exit status (0 for a quit, the last frame's after -n). nullopt when the
// terminal cannot show a screen ($TERM unknown to terminfo, or without cursor
// addressing, as "dumb"): nothing was drawn.
std::optional<int> run_top_screen(StatusFeed& feed, const TopPlan& plan, const TopReply& first);

}  // namespace fdsup::ctl
