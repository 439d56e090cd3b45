#include "ctl/top_screen.h"
#include "ctl/render.h"
#include "ctl/top_table.h"

#include <curses.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <clocale>
#include <csignal>
#include <string>
#include <string_view>
#include <vector>

namespace fdsup::ctl {

namespace {

using Clock = std::chrono::steady_clock;

constexpr std::string_view kKeys = "q quit  sort: c cpu  m memory  n name  r restarts  u uptime  arrows scroll";
constexpr int kTableTop = 3;  // summary, status line, column headings; the keys at the bottom

volatile std::sig_atomic_t quit_asked = 0;

extern "C" void ask_to_quit(int) {
    quit_asked = 1;
}

// Ctrl-C, SIGTERM and SIGHUP (the ssh session went) end the view as q does, from the
// loop, which restores the terminal. Set after newterm(), whose own handlers (for
// SIGINT and SIGTERM, where they were the default) would exit with status 1. Without
// SA_RESTART: the poll() waiting returns at once.
void quit_on_signals() {
    struct sigaction action{};
    action.sa_handler = ask_to_quit;
    sigemptyset(&action.sa_mask);
    for (int sig : {SIGINT, SIGTERM, SIGHUP}) sigaction(sig, &action, nullptr);
}

// ncurses on stdin and stdout for the guard's life; the terminal as it was after
// (the alternate screen left, the shell's lines back).
class Terminal {
public:
    Terminal() : screen_(newterm(nullptr, stdout, stdin)) {
        if (screen_ == nullptr) return;
        // A terminal without cursor addressing (TERM=dumb) cannot show a screen.
        char* cursor_address = tigetstr("cup");
        if (cursor_address == nullptr || cursor_address == reinterpret_cast<char*>(-1)) {
            release();
            return;
        }
        cbreak();               // keys as typed; Ctrl-C stays a signal
        noecho();
        keypad(stdscr, TRUE);   // arrows, PgUp/PgDn and KEY_RESIZE as one key each
        nodelay(stdscr, TRUE);  // getch() never waits: poll() does, for keys and fdsupd
        curs_set(0);            // no cursor on the table, where the terminal can hide it
    }
    ~Terminal() { release(); }
    Terminal(const Terminal&) = delete;
    Terminal& operator=(const Terminal&) = delete;

    bool ready() const { return screen_ != nullptr; }

private:
    void release() {
        if (screen_ == nullptr) return;
        endwin();
        delscreen(screen_);
        screen_ = nullptr;
    }

    SCREEN* screen_;
};

struct View {
    TopSort sort = TopSort::name;
    Json reply = Json::object();  // the last one fdsupd gave: shown until the next
    std::string status;           // when it came; or why the last frame has none
    bool failing = false;
    size_t scroll = 0;            // table rows above the screen
};

size_t table_rows_shown() {
    return static_cast<size_t>(std::max(LINES - kTableTop - 1, 0));
}

// `text` on line `y`, cut to the width; `fill`: with spaces to the edge (for A_REVERSE).
void put(int y, const std::string& text, attr_t attributes, bool fill = false) {
    if (y < 0 || y >= LINES) return;
    auto width = static_cast<size_t>(std::max(COLS, 0));
    std::string shown = cut_to_width(text, width);
    if (fill) shown += std::string(width - display_width(shown), ' ');
    attrset(attributes);
    mvaddstr(y, 0, shown.c_str());
    attrset(A_NORMAL);
}

void draw(View& view) {
    TopTable table = top_table(view.reply, view.sort);
    std::vector<std::string> lines = top_lines(table, static_cast<size_t>(std::max(COLS, 0)));
    size_t rows = lines.size() - 1;  // below the headings
    size_t shown = table_rows_shown();
    view.scroll = std::min(view.scroll, rows > shown ? rows - shown : 0);

    erase();
    put(0, top_summary_line(table, static_cast<size_t>(std::max(COLS, 0))), A_BOLD);
    put(1, view.status, view.failing ? A_BOLD : A_NORMAL);
    put(2, lines.front(), A_REVERSE, true);
    for (size_t i = 0; i < shown && view.scroll + i < rows; ++i) {
        size_t row = view.scroll + i;
        bool worker = row < table.rows.size() && table.rows[row].worker;
        put(kTableTop + static_cast<int>(i), lines[row + 1], worker ? A_BOLD : A_NORMAL);
    }
    put(LINES - 1, std::string(kKeys), A_NORMAL);
    refresh();
}

// What `key` does to the view; false: quit.
bool on_key(int key, View& view) {
    if (key == 'q' || key == 'Q') return false;
    if (auto sort = top_sort_for_key(key)) {
        view.sort = *sort;
        view.scroll = 0;
    }
    size_t page = std::max<size_t>(table_rows_shown(), 1);
    switch (key) {
        case KEY_UP: view.scroll -= std::min<size_t>(view.scroll, 1); break;
        case KEY_DOWN: view.scroll += 1; break;  // draw() keeps it within the table
        case KEY_PPAGE: view.scroll -= std::min(view.scroll, page); break;
        case KEY_NPAGE: view.scroll += page; break;
        case KEY_HOME: view.scroll = 0; break;
        case KEY_END: view.scroll = static_cast<size_t>(-1); break;
        case '\f': clearok(curscr, TRUE); break;  // Ctrl-L: everything again, as in other programs
        default: break;                           // KEY_RESIZE: LINES and COLS are new; redrawn
    }
    return true;
}

}  // namespace

std::optional<int> run_top_screen(StatusFeed& feed, const TopPlan& plan, const TopReply& first) {
    // Names in UTF-8 drawn as such (ncursesw). The character type only: numbers keep
    // their decimal point.
    std::setlocale(LC_CTYPE, "");
    Terminal terminal;
    if (!terminal.ready()) return std::nullopt;
    quit_on_signals();

    View view;
    view.sort = plan.sort;
    long long frames = 0;
    int status = kExitOk;
    auto show = [&](const TopReply& frame) {
        ++frames;
        status = frame.status;
        view.failing = !frame.reply;
        if (frame.reply) {
            view.reply = frame.reply->value;
            view.status = "updated " + frame.clock + ", every " + interval_text(plan);
        } else {
            view.status = frame.clock + " " + frame.error + "; asking again every " + interval_text(plan);
        }
    };
    show(first);
    draw(view);

    auto next_ask = Clock::now() + plan.interval;
    std::optional<Clock::time_point> answer_due;  // a request is out, its answer due by then
    for (;;) {
        if (quit_asked) return kExitOk;
        if (plan.iterations && frames >= *plan.iterations) return status;
        auto now = Clock::now();
        if (!answer_due && now >= next_ask) {
            next_ask += plan.interval;
            if (next_ask <= now) next_ask = now + plan.interval;  // no burst to catch up
            if (auto asked = feed.ask(); !asked) {
                show(top_reply(std::unexpected(asked.error())));
                draw(view);
                continue;
            }
            answer_due = now + kReplyWait;
        }
        auto wait = std::chrono::ceil<std::chrono::milliseconds>((answer_due ? *answer_due : next_ask) - now);
        pollfd fds[2] = {{STDIN_FILENO, POLLIN, 0}, {answer_due ? feed.fd() : -1, POLLIN, 0}};
        int ready = ::poll(fds, 2, static_cast<int>(std::clamp<long long>(wait.count(), 0, 60'000)));
        if (ready < 0 && errno != EINTR) return kExitFailed;
        if (ready > 0 && (fds[0].revents & (POLLHUP | POLLERR | POLLNVAL)) != 0) return kExitOk;  // the terminal went

        bool changed = false;
        for (int key = getch(); key != ERR; key = getch()) {
            if (!on_key(key, view)) return kExitOk;
            changed = true;
        }
        bool answered = ready > 0 && fds[1].revents != 0;
        if (answer_due && (answered || Clock::now() >= *answer_due)) {
            // The answer (or the connection's end) has come; or none did in time: given up.
            show(top_reply(feed.answer(answered ? Clock::now() + kReplyWait : Clock::now())));
            answer_due.reset();
            changed = true;
        }
        if (changed) draw(view);
    }
}

}  // namespace fdsup::ctl
