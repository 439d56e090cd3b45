// LogFile on a temp dir: stamps, rotation by size (names, log_keep, a line never split),
// gzip off the loop with the names shifting under it, tidying leftovers, reopening after
// an outside rename, refusing symlinks and FIFOs, and a failed write dropping its batch.
#include <doctest/doctest.h>
#include <dirent.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>
#include <zlib.h>

#include <algorithm>
#include <csignal>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "output/log_file.h"
#include "temp_dir.h"

using fdsup::LogFile;
using fdsup::LogFileOptions;
using fdsup::config::LogTimestamps;
using namespace std::chrono;

namespace {

std::set<std::string> names_in(const TempDir& dir) {
    std::set<std::string> out;
    DIR* d = opendir(dir.path.c_str());
    while (const dirent* e = readdir(d))
        if (std::string(e->d_name) != "." && std::string(e->d_name) != "..") out.insert(e->d_name);
    closedir(d);
    return out;
}

std::string read_text(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

std::string read_gzip(const std::string& path) {
    gzFile gz = gzopen(path.c_str(), "rb");
    REQUIRE(gz != nullptr);
    std::string out;
    char buffer[4096];
    int n;
    while ((n = gzread(gz, buffer, sizeof buffer)) > 0) out.append(buffer, static_cast<size_t>(n));
    REQUIRE(n == 0);  // not an error: the whole stream was valid
    gzclose(gz);
    return out;
}

std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> lines;
    std::stringstream s(text);
    for (std::string line; std::getline(s, line);) lines.push_back(line);
    return lines;
}

struct Loop {
    uv_loop_t loop{};
    Loop() { uv_loop_init(&loop); }
    ~Loop() {
        uv_run(&loop, UV_RUN_DEFAULT);
        uv_loop_close(&loop);
    }
    void drain() { uv_run(&loop, UV_RUN_DEFAULT); }  // every compression done
};

// "line 000042" + padding to 20 bytes (with the newline: 21).
std::string numbered(int n) {
    char text[32];
    std::snprintf(text, sizeof text, "line %06d .........", n);
    return std::string(text, 20);
}

const system_clock::time_point kWhen = system_clock::time_point(seconds(1796606625)) + microseconds(123456);

LogFileOptions plain(std::optional<uint64_t> max_size, int keep) {
    return LogFileOptions{max_size, keep, false, LogTimestamps::none};
}

}  // namespace

TEST_CASE("log stamps: RFC 3339 with microseconds, UTC, local or none") {
    // 1796606625 = 2026-12-07T01:23:45Z
    CHECK(fdsup::log_stamp(kWhen, LogTimestamps::utc) == "2026-12-07T01:23:45.123456Z");
    CHECK(fdsup::log_stamp(kWhen, LogTimestamps::none) == "");
    CHECK(fdsup::log_stamp(system_clock::time_point(seconds(1796606625)), LogTimestamps::utc) ==
          "2026-12-07T01:23:45.000000Z");
    const char* saved = std::getenv("TZ");
    std::string previous = saved ? saved : "";
    setenv("TZ", "CET-1", 1);  // POSIX: one hour east of UTC
    tzset();
    CHECK(fdsup::log_stamp(kWhen, LogTimestamps::local) == "2026-12-07T02:23:45.123456+01:00");
    setenv("TZ", "XST+5:30", 1);
    tzset();
    CHECK(fdsup::log_stamp(kWhen, LogTimestamps::local) == "2026-12-06T19:53:45.123456-05:30");
    if (saved) setenv("TZ", previous.c_str(), 1);
    else unsetenv("TZ");
    tzset();
}

TEST_CASE("a log file's lines carry their stamp and a space; none: the line alone") {
    Loop loop;
    TempDir dir("logfile");
    {
        auto file = LogFile::open(&loop.loop, dir / "a.log", LogFileOptions{std::nullopt, 5, false, LogTimestamps::utc});
        REQUIRE(file);
        (*file)->append(kWhen, "hello");
        (*file)->append(kWhen + seconds(1), "");
        (*file)->flush();
        auto bare = LogFile::open(&loop.loop, dir / "b.log", plain(std::nullopt, 5));
        REQUIRE(bare);
        (*bare)->append(kWhen, "hello");
    }  // flushed when closed
    CHECK(read_text(dir / "a.log") == "2026-12-07T01:23:45.123456Z hello\n2026-12-07T01:23:46.123456Z \n");
    CHECK(read_text(dir / "b.log") == "hello\n");
    struct stat st {};
    REQUIRE(stat((dir / "a.log").c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0640);
}

TEST_CASE("rotation keeps each file within log_max_size and log_keep files, lines whole and in order") {
    Loop loop;
    TempDir dir("logfile");
    auto file = LogFile::open(&loop.loop, dir / "w.log", plain(100, 2));  // 4 lines of 21 bytes per file
    REQUIRE(file);
    for (int n = 0; n < 30; ++n) {
        (*file)->append(kWhen, numbered(n));
        if (n % 3 == 0) (*file)->flush();  // batches of several lines, and single ones
    }
    (*file)->flush();
    CHECK(names_in(dir) == std::set<std::string>{"w.log", "w.log.1", "w.log.2"});
    std::vector<std::string> all;
    for (const char* name : {"w.log.2", "w.log.1", "w.log"}) {
        std::string text = read_text(dir / name);
        CHECK(text.size() <= 100);
        CHECK(text.size() % 21 == 0);  // whole lines only
        for (auto& line : lines_of(text)) all.push_back(line);
    }
    // 30 lines, 4 per file: the last 3 files hold lines 16..29 (4 + 4 + 2... the newest
    // has what is left after the last rotation).
    REQUIRE(!all.empty());
    CHECK(all.back() == numbered(29));
    int first = std::stoi(all.front().substr(5, 6));
    for (size_t i = 0; i < all.size(); ++i) CHECK(all[i] == numbered(first + static_cast<int>(i)));
    CHECK((*file)->rotations() == 7);
}

TEST_CASE("log_keep = 0 keeps no rotated file; no log_max_size never rotates by size") {
    Loop loop;
    TempDir dir("logfile");
    auto none_kept = LogFile::open(&loop.loop, dir / "a.log", plain(50, 0));
    auto unbounded = LogFile::open(&loop.loop, dir / "b.log", plain(std::nullopt, 3));
    REQUIRE(none_kept);
    REQUIRE(unbounded);
    for (int n = 0; n < 10; ++n) {
        (*none_kept)->append(kWhen, numbered(n));
        (*unbounded)->append(kWhen, numbered(n));
        (*none_kept)->flush();
        (*unbounded)->flush();
    }
    CHECK(names_in(dir) == std::set<std::string>{"a.log", "b.log"});
    CHECK(read_text(dir / "a.log") == numbered(8) + "\n" + numbered(9) + "\n");
    CHECK(lines_of(read_text(dir / "b.log")).size() == 10);
}

TEST_CASE("a line longer than log_max_size goes whole into a file of its own") {
    Loop loop;
    TempDir dir("logfile");
    auto file = LogFile::open(&loop.loop, dir / "w.log", plain(30, 3));
    REQUIRE(file);
    (*file)->append(kWhen, "short");
    (*file)->append(kWhen, std::string(100, 'x'));
    (*file)->append(kWhen, "after");
    (*file)->flush();
    CHECK(read_text(dir / "w.log.2") == "short\n");
    CHECK(read_text(dir / "w.log.1") == std::string(100, 'x') + "\n");
    CHECK(read_text(dir / "w.log") == "after\n");
}

TEST_CASE("log_compress: rotated files are gzipped off the loop, names shifting while jobs run") {
    Loop loop;
    TempDir dir("logfile");
    auto file = LogFile::open(&loop.loop, dir / "w.log", LogFileOptions{100, 3, true, LogTimestamps::none});
    REQUIRE(file);
    // Several rotations before the loop runs any job's completion: each job follows its
    // file as the names shift, and those pushed past log_keep are cancelled.
    for (int n = 0; n < 40; ++n) (*file)->append(kWhen, numbered(n));
    (*file)->flush();
    loop.drain();
    CHECK((*file)->compressing() == 0);
    CHECK(names_in(dir) == std::set<std::string>{"w.log", "w.log.1.gz", "w.log.2.gz", "w.log.3.gz"});
    std::vector<std::string> all;
    for (const char* name : {"w.log.3.gz", "w.log.2.gz", "w.log.1.gz"})
        for (auto& line : lines_of(read_gzip(dir / name))) all.push_back(line);
    for (auto& line : lines_of(read_text(dir / "w.log"))) all.push_back(line);
    REQUIRE(all.size() == 16);  // the last 4 files of 4 lines, the live one full too
    for (size_t i = 0; i < all.size(); ++i) CHECK(all[i] == numbered(24 + static_cast<int>(i)));
}

TEST_CASE("tidy: leftover temp files go, files past log_keep go, uncompressed ones are compressed again") {
    Loop loop;
    TempDir dir("logfile");
    auto write = [&](const std::string& name, const std::string& text) { std::ofstream(dir / name) << text; };
    write(".w.log.gz-tmp-7", "half a gzip");
    write("w.log.1", "one\n");        // a compression the exec cut short
    write("w.log.2", "two\n");        // renamed into place, the source not yet removed:
    write("w.log.2.gz", "");          // (made valid below)
    write("w.log.5", "five\n");       // past log_keep
    write("w.log.other", "kept\n");   // not one of ours
    {
        gzFile gz = gzopen((dir / "w.log.2.gz").c_str(), "wb");
        gzputs(gz, "two\n");
        gzclose(gz);
    }
    auto file = LogFile::open(&loop.loop, dir / "w.log", LogFileOptions{100, 3, true, LogTimestamps::none});
    REQUIRE(file);
    loop.drain();
    CHECK(names_in(dir) == std::set<std::string>{"w.log", "w.log.1.gz", "w.log.2.gz", "w.log.other"});
    CHECK(read_gzip(dir / "w.log.1.gz") == "one\n");
    CHECK(read_gzip(dir / "w.log.2.gz") == "two\n");
}

TEST_CASE("reopen: after an outside rename, the next lines go into a new file at the path") {
    Loop loop;
    TempDir dir("logfile");
    auto file = LogFile::open(&loop.loop, dir / "w.log", plain(std::nullopt, 3));
    REQUIRE(file);
    (*file)->append(kWhen, "before");
    (*file)->flush();
    REQUIRE(rename((dir / "w.log").c_str(), (dir / "w.log-20261207").c_str()) == 0);
    (*file)->append(kWhen, "between");  // pending: flushed into the renamed file by reopen
    REQUIRE((*file)->reopen());
    CHECK((*file)->size() == 0);
    (*file)->append(kWhen, "after");
    (*file)->flush();
    CHECK(read_text(dir / "w.log-20261207") == "before\nbetween\n");
    CHECK(read_text(dir / "w.log") == "after\n");
    // A path that cannot be opened: the old file stays.
    REQUIRE(rename((dir / "w.log").c_str(), (dir / "moved").c_str()) == 0);
    REQUIRE(symlink((dir / "elsewhere").c_str(), (dir / "w.log").c_str()) == 0);
    auto failed = (*file)->reopen();
    REQUIRE(!failed);
    CHECK(failed.error().text().find("a symlink on the path") != std::string::npos);
    (*file)->append(kWhen, "still");
    (*file)->flush();
    CHECK(read_text(dir / "moved") == "after\nstill\n");
}

TEST_CASE("a log file is refused on a symlink, a FIFO, a directory, or in a missing directory") {
    Loop loop;
    TempDir dir("logfile");
    std::ofstream(dir / "victim") << "untouched\n";
    REQUIRE(symlink((dir / "victim").c_str(), (dir / "linked.log").c_str()) == 0);
    REQUIRE(mkfifo((dir / "fifo.log").c_str(), 0600) == 0);
    REQUIRE(mkdir((dir / "dir.log").c_str(), 0700) == 0);
    auto linked = LogFile::open(&loop.loop, dir / "linked.log", plain(100, 1));
    REQUIRE(!linked);
    CHECK(linked.error().text().find("a symlink on the path") != std::string::npos);
    auto fifo = LogFile::open(&loop.loop, dir / "fifo.log", plain(100, 1));
    REQUIRE(!fifo);
    CHECK(fifo.error().text().find("No such device or address") != std::string::npos);
    CHECK(!LogFile::open(&loop.loop, dir / "dir.log", plain(100, 1)));
    auto missing = LogFile::open(&loop.loop, dir / "none/x.log", plain(100, 1));
    REQUIRE(!missing);
    CHECK(missing.error().text().find("No such file or directory") != std::string::npos);
    CHECK(read_text(dir / "victim") == "untouched\n");
}

TEST_CASE("a failed write drops its batch and counts it; later writes go on") {
    Loop loop;
    auto file = LogFile::adopt(&loop.loop, "/dev/full", fdsup::UniqueFd(open("/dev/full", O_WRONLY | O_CLOEXEC)),
                               plain(std::nullopt, 1));
    file->append(kWhen, "one");
    file->append(kWhen, "two");
    file->flush();
    CHECK(file->dropped_lines() == 2);
    file->append(kWhen, "three");
    file->flush();
    CHECK(file->dropped_lines() == 3);
}

TEST_CASE("a write cut short by an error leaves no part of a line: the file is cut back to the last whole one") {
    Loop loop;
    TempDir dir("logfile");
    auto file = LogFile::open(&loop.loop, dir / "w.log", plain(std::nullopt, 1));
    REQUIRE(file);
    // RLIMIT_FSIZE makes the kernel write up to the limit, then fail (EFBIG): a short
    // write followed by an error, as a disk filling up mid-batch does.
    struct sigaction ignore {}, previous {};
    ignore.sa_handler = SIG_IGN;
    REQUIRE(sigaction(SIGXFSZ, &ignore, &previous) == 0);
    rlimit saved{};
    REQUIRE(getrlimit(RLIMIT_FSIZE, &saved) == 0);
    rlimit small = saved;
    small.rlim_cur = 50;  // two whole lines of 21 bytes, and 8 bytes of a third
    REQUIRE(setrlimit(RLIMIT_FSIZE, &small) == 0);
    for (int n = 0; n < 5; ++n) (*file)->append(kWhen, numbered(n));
    (*file)->flush();
    REQUIRE(setrlimit(RLIMIT_FSIZE, &saved) == 0);
    REQUIRE(sigaction(SIGXFSZ, &previous, nullptr) == 0);
    CHECK((*file)->dropped_lines() == 3);
    CHECK(read_text(dir / "w.log") == numbered(0) + "\n" + numbered(1) + "\n");
    (*file)->append(kWhen, numbered(5));  // the next line starts a line of its own
    (*file)->flush();
    CHECK(read_text(dir / "w.log") == numbered(0) + "\n" + numbered(1) + "\n" + numbered(5) + "\n");
    CHECK((*file)->size() == 63);
}

TEST_CASE("a smaller log_keep while compressions run: none of their results lands past it") {
    Loop loop;
    TempDir dir("logfile");
    auto file = LogFile::open(&loop.loop, dir / "w.log", LogFileOptions{100, 6, true, LogTimestamps::none});
    REQUIRE(file);
    for (int n = 0; n < 28; ++n) (*file)->append(kWhen, numbered(n));  // 6 rotations, jobs queued
    (*file)->flush();
    REQUIRE((*file)->compressing() > 2);
    (*file)->set_options(LogFileOptions{100, 2, true, LogTimestamps::none});  // before any job's result
    loop.drain();
    CHECK((*file)->compressing() == 0);
    CHECK(names_in(dir) == std::set<std::string>{"w.log", "w.log.1.gz", "w.log.2.gz"});
}

TEST_CASE("no log_max_size: tidy leaves numbered files alone (an outside rotation's), temp files still go") {
    Loop loop;
    TempDir dir("logfile");
    for (const char* name : {"w.log.1", "w.log.7.gz", ".w.log.gz-tmp-3"}) std::ofstream(dir / name) << "x\n";
    auto file = LogFile::open(&loop.loop, dir / "w.log", LogFileOptions{std::nullopt, 2, true, LogTimestamps::none});
    REQUIRE(file);
    loop.drain();
    CHECK(names_in(dir) == std::set<std::string>{"w.log", "w.log.1", "w.log.7.gz"});
}

TEST_CASE("a compression whose file was moved by another rotator meanwhile is dropped, the new file untouched") {
    Loop loop;
    TempDir dir("logfile");
    auto file = LogFile::open(&loop.loop, dir / "w.log", LogFileOptions{100, 3, true, LogTimestamps::none});
    REQUIRE(file);
    for (int n = 0; n < 6; ++n) (*file)->append(kWhen, numbered(n));  // one rotation: w.log.1 queued
    (*file)->flush();
    REQUIRE((*file)->compressing() == 1);
    // Before the job's result is taken (that happens on the loop): something else
    // rotates, putting another file at w.log.1.
    REQUIRE(rename((dir / "w.log.1").c_str(), (dir / "w.log.2").c_str()) == 0);
    std::ofstream(dir / "w.log.1") << "logrotate's\n";
    loop.drain();
    CHECK(read_text(dir / "w.log.1") == "logrotate's\n");
    CHECK(names_in(dir) == std::set<std::string>{"w.log", "w.log.1", "w.log.2"});
}

TEST_CASE("a compression never writes through a name someone else put there (O_EXCL)") {
    Loop loop;
    TempDir dir("logfile");
    std::ofstream(dir / "victim") << "untouched\n";
    REQUIRE(link((dir / "victim").c_str(), (dir / ".w.log.gz-tmp-1").c_str()) == 0);  // the first job's name
    auto file = LogFile::open(&loop.loop, dir / "w.log", LogFileOptions{100, 3, true, LogTimestamps::none}, false);
    REQUIRE(file);
    for (int n = 0; n < 6; ++n) (*file)->append(kWhen, numbered(n));
    (*file)->flush();
    loop.drain();
    CHECK(read_text(dir / "victim") == "untouched\n");
    CHECK(names_in(dir) == std::set<std::string>{"w.log", "w.log.1.gz", "victim"});
    CHECK(read_gzip(dir / "w.log.1.gz").starts_with(numbered(0)));
}
