// A worker's resource keys (SPEC "Resources"): the limits written into its cgroup
// (memory_max, memory_high, memory_swap_max, cpu_max, cpu_weight, pids_max, io_weight)
// and recycling (recycle_memory, recycle_after, max_age, max_age_jitter): sizes,
// values, defaults, and every error at its place.
#include <doctest/doctest.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "config/loader.h"
#include "config/values.h"
#include "config_test_support.h"

using namespace std::chrono_literals;
using namespace config_test;

namespace {

// A cgroup-mode worker with `keys` from line 4 on.
std::string web_with(const std::string& keys, const std::string& kill_mode = "cgroup") {
    return "[workers.web]\ncommand = [\"/bin/app\"]\nkill_mode = \"" + kill_mode + "\"\n" + keys + "\n";
}

std::vector<std::string> warnings_of(std::string_view text) {
    std::vector<std::string> out;
    for (const auto& w : load(text).warnings) out.push_back(w.text());
    return out;
}

constexpr uint64_t KiB = 1024, MiB = KiB * 1024, GiB = MiB * 1024, TiB = GiB * 1024;

}  // namespace

// ---------------------------------------------------------------------------------
// Sizes

TEST_CASE("parse_size: bytes, or an integer and one of K M G T (powers of 1024)") {
    CHECK(parse_size("0") == 0u);
    CHECK(parse_size("1") == 1u);
    CHECK(parse_size("1048576") == MiB);
    CHECK(parse_size("512K") == 512 * KiB);
    CHECK(parse_size("64M") == 64 * MiB);
    CHECK(parse_size("2G") == 2 * GiB);
    CHECK(parse_size("1T") == TiB);
    CHECK(parse_size("0M") == 0u);
    CHECK(parse_size("007G") == 7 * GiB);
    // At most what a signed 64-bit count holds.
    CHECK(parse_size("8388607T") == 8388607 * TiB);
    CHECK(!parse_size("8388608T"));
    CHECK(parse_size("9223372036854775807") == kMaxSize);
    CHECK(!parse_size("9223372036854775808"));
    CHECK(!parse_size("8796093022208M"));
    CHECK(!parse_size("99999999999999999999999G"));

    for (const char* bad : {"", "K", "M", "64MB", "64B", "512b", "64KiB", "64m", "64k", "2g", "1t", "1P", "1E",
                            "64 M", " 64M", "64M ", "1.5G", "-1M", "+1M", "0x10", "1e6", "1GG", "1MK", "infinity"})
        CHECK_MESSAGE(!parse_size(bad), bad);
}

TEST_CASE("size_text: the largest suffix that divides exactly, else bytes") {
    CHECK(size_text(0) == "0");
    CHECK(size_text(100) == "100");
    CHECK(size_text(KiB) == "1K");
    CHECK(size_text(1536 * MiB) == "1536M");
    CHECK(size_text(2 * GiB) == "2G");
    CHECK(size_text(3 * TiB) == "3T");
    CHECK(size_text(GiB + 1) == "1073741825");
    CHECK(parse_size(size_text(1536 * MiB)) == 1536 * MiB);
}

TEST_CASE("resources: each size form of each size key") {
    struct Case {
        std::string written;
        std::optional<uint64_t> bytes;
    };
    const Case cases[] = {
        {R"("512K")", 512 * KiB},   {R"("64M")", 64 * MiB},    {R"("2G")", 2 * GiB},
        {R"("1T")", TiB},           {R"("1048576")", MiB},     {"1048576", MiB},
        {"1", 1},                   {R"("infinity")", std::nullopt},
    };
    for (const auto& c : cases) {
        CAPTURE(c.written);
        for (const char* key : {"memory_max", "memory_high", "memory_swap_max", "recycle_memory"}) {
            CAPTURE(key);
            Config config = valid(web_with(std::string(key) + " = " + c.written));
            const WorkerConfig& w = config.workers[0];
            const std::optional<uint64_t>& read = std::string_view(key) == "memory_max"        ? w.limits.memory_max
                                                  : std::string_view(key) == "memory_high"     ? w.limits.memory_high
                                                  : std::string_view(key) == "memory_swap_max" ? w.limits.memory_swap_max
                                                                                               : w.recycle.memory;
            CHECK(read == c.bytes);
        }
    }
}

// ---------------------------------------------------------------------------------
// Valid configs

TEST_CASE("resources: every key, read into the model") {
    auto c = valid(R"(
[workers.web]
command = ["/bin/app"]
kill_mode = "cgroup"
memory_max = "2G"
memory_high = "1536M"
memory_swap_max = 0
cpu_max = "150%"
cpu_weight = 200
pids_max = 512
io_weight = 50
recycle_memory = "1G"
recycle_after = "2m"
max_age = "6h"
max_age_jitter = "30m"
)");
    const WorkerConfig& w = c.workers[0];
    CHECK(w.limits.memory_max == 2 * GiB);
    CHECK(w.limits.memory_high == 1536 * MiB);
    CHECK(w.limits.memory_swap_max == 0u);  // no swap at all
    CHECK(w.limits.cpu_max_percent == 150);
    CHECK(w.limits.cpu_weight == 200);
    CHECK(w.limits.pids_max == 512);
    CHECK(w.limits.io_weight == 50);
    CHECK(w.limits.any());
    CHECK(w.recycle.memory == GiB);
    CHECK(w.recycle.memory_after == 2min);
    CHECK(w.recycle.max_age == 6h);
    CHECK(w.recycle.max_age_jitter == 30min);
    CHECK(w.recycle.any());
    CHECK(load(web_with("memory_max = \"2G\"\nmemory_high = \"1536M\"")).warnings.empty());
}

TEST_CASE("resources: the defaults are no limits, no recycling, recycle_after 30s") {
    auto c = valid(R"(
[workers.web]
command = ["/bin/app"]
)");
    const WorkerConfig& w = c.workers[0];
    CHECK(w.limits == ResourceLimits{});
    CHECK(!w.limits.memory_max);
    CHECK(!w.limits.memory_high);
    CHECK(!w.limits.memory_swap_max);
    CHECK(!w.limits.cpu_max_percent);
    CHECK(!w.limits.cpu_weight);
    CHECK(!w.limits.pids_max);
    CHECK(!w.limits.io_weight);
    CHECK(!w.limits.any());
    CHECK(!w.recycle.memory);
    CHECK(w.recycle.memory_after == 30s);
    CHECK(!w.recycle.max_age);
    CHECK(w.recycle.max_age_jitter == 0s);
    CHECK(!w.recycle.any());
}

TEST_CASE("resources: \"infinity\" is no limit, and needs no cgroup") {
    auto c = valid(R"(
[workers.web]
command = ["/bin/app"]
memory_max = "infinity"
memory_high = "infinity"
memory_swap_max = "infinity"
cpu_max = "infinity"
pids_max = "infinity"
recycle_memory = "infinity"
recycle_after = "1m"
)");
    const WorkerConfig& w = c.workers[0];
    CHECK(w.kill_mode == KillMode::group);
    CHECK(!w.limits.any());
    CHECK(!w.recycle.memory);
    CHECK(!w.recycle.any());
    CHECK(w.recycle.memory_after == 1min);  // kept: recycle_memory is switched off on purpose
}

TEST_CASE("resources: cpu_max, weights and pids_max at their bounds") {
    auto cpu = [](const std::string& value) { return valid(web_with("cpu_max = " + value)).workers[0].limits.cpu_max_percent; };
    CHECK(cpu(R"("150%")") == 150);
    CHECK(cpu("150") == 150);  // an integer is a percentage too
    CHECK(cpu(R"("1%")") == 1);
    CHECK(cpu(R"("100000%")") == 100000);
    CHECK(cpu("100000") == 100000);
    CHECK(cpu(R"("0050%")") == 50);
    CHECK(cpu(R"("infinity")") == std::nullopt);

    auto w = valid(web_with("cpu_weight = 1\nio_weight = 10000\npids_max = 4194304")).workers[0];
    CHECK(w.limits.cpu_weight == 1);
    CHECK(w.limits.io_weight == 10000);
    CHECK(w.limits.pids_max == 4194304);
    w = valid(web_with("cpu_weight = 10000\nio_weight = 1\npids_max = 1")).workers[0];
    CHECK(w.limits.cpu_weight == 10000);
    CHECK(w.limits.io_weight == 1);
    CHECK(w.limits.pids_max == 1);
}

TEST_CASE("resources: recycling works in any kill_mode") {
    for (const char* mode : {"process", "group", "cgroup"}) {
        CAPTURE(mode);
        auto w = valid(web_with("recycle_memory = \"512M\"\nrecycle_after = \"10s\"\nmax_age = \"1h\"\nmax_age_jitter = \"0s\"",
                                mode))
                     .workers[0];
        CHECK(w.recycle.memory == 512 * MiB);
        CHECK(w.recycle.memory_after == 10s);
        CHECK(w.recycle.max_age == 1h);
        CHECK(w.recycle.max_age_jitter == 0s);
    }
}

TEST_CASE("resources: a changed limit or recycle policy is a changed worker") {
    auto base = valid(web_with("memory_max = \"1G\"")).workers[0];
    CHECK(base == valid(web_with("memory_max = 1073741824")).workers[0]);
    CHECK(!(base == valid(web_with("memory_max = \"2G\"")).workers[0]));
    CHECK(!(base == valid(web_with("memory_max = \"1G\"\npids_max = 10")).workers[0]));
    CHECK(!(base == valid(web_with("memory_max = \"1G\"\nmax_age = \"1h\"")).workers[0]));
}

// ---------------------------------------------------------------------------------
// Errors, each at its place

TEST_CASE("resources: bad sizes") {
    CHECK(one_error(web_with(R"(memory_max = "64MB")")) ==
          "t.toml:4:14: workers.web.memory_max: invalid size \"64MB\" (use e.g. \"512K\", \"64M\", \"2G\", \"1T\" "
          "(powers of 1024), a number of bytes or \"infinity\"; at most 8388607T)");
    CHECK(one_error(web_with(R"(memory_high = "1.5G")")).starts_with(
        "t.toml:4:15: workers.web.memory_high: invalid size \"1.5G\" ("));
    CHECK(one_error(web_with(R"(memory_swap_max = "8388608T")")).starts_with(
        "t.toml:4:19: workers.web.memory_swap_max: invalid size \"8388608T\" ("));
    CHECK(one_error(web_with(R"(recycle_memory = "lots")")).starts_with(
        "t.toml:4:18: workers.web.recycle_memory: invalid size \"lots\" ("));
    CHECK(one_error(web_with(R"(memory_max = "64m")")).starts_with("t.toml:4:14: workers.web.memory_max: invalid size"));
    CHECK(one_error(web_with(R"(memory_max = "unlimited")"))
              .starts_with("t.toml:4:14: workers.web.memory_max: invalid size \"unlimited\""));

    CHECK(one_error(web_with("memory_max = 0")) ==
          "t.toml:4:14: workers.web.memory_max: must be more than 0 (for none, write \"infinity\" or leave it out)");
    CHECK(one_error(web_with(R"(memory_high = "0M")")) ==
          "t.toml:4:15: workers.web.memory_high: must be more than 0 (for none, write \"infinity\" or leave it out)");
    CHECK(one_error(web_with(R"(recycle_memory = "0")")) ==
          "t.toml:4:18: workers.web.recycle_memory: must be more than 0 (for none, write \"infinity\" or leave it "
          "out)");
    CHECK(one_error(web_with("memory_max = -1")) == "t.toml:4:14: workers.web.memory_max: must not be negative, got -1");
    CHECK(one_error(web_with("memory_swap_max = -4096")) ==
          "t.toml:4:19: workers.web.memory_swap_max: must not be negative, got -4096");
    CHECK(one_error(web_with("memory_max = true")) ==
          "t.toml:4:14: workers.web.memory_max: expected a size like \"64M\", a number of bytes or \"infinity\", got "
          "a boolean");
    CHECK(one_error(web_with("memory_max = 1.5")) ==
          "t.toml:4:14: workers.web.memory_max: expected a size like \"64M\", a number of bytes or \"infinity\", got "
          "a float");
}

TEST_CASE("resources: bad cpu_max, weights and pids_max") {
    CHECK(one_error(web_with(R"(cpu_max = "0%")")) == "t.toml:4:11: workers.web.cpu_max: must be between 1% and 100000%, got 0%");
    CHECK(one_error(web_with("cpu_max = 0")) == "t.toml:4:11: workers.web.cpu_max: must be between 1% and 100000%, got 0%");
    CHECK(one_error(web_with("cpu_max = -50")) ==
          "t.toml:4:11: workers.web.cpu_max: must be between 1% and 100000%, got -50%");
    CHECK(one_error(web_with(R"(cpu_max = "100001%")")) ==
          "t.toml:4:11: workers.web.cpu_max: must be between 1% and 100000%, got 100001%");
    CHECK(one_error(web_with(R"(cpu_max = "150")")) ==
          "t.toml:4:11: workers.web.cpu_max: invalid value \"150\" (use a percentage of one CPU like \"150%\" for 1.5 "
          "CPUs, or \"infinity\")");
    for (const char* bad : {R"("1.5%")", R"("%")", R"("150 %")", R"("-5%")", R"("1.5")", R"("99999999999999999999999%")"})
        CHECK_MESSAGE(one_error(web_with(std::string("cpu_max = ") + bad))
                          .starts_with("t.toml:4:11: workers.web.cpu_max: invalid value "),
                      bad);
    CHECK(one_error(web_with("cpu_max = 1.5")) ==
          "t.toml:4:11: workers.web.cpu_max: expected a percentage like \"150%\" or \"infinity\", got a float");

    CHECK(one_error(web_with("cpu_weight = 0")) == "t.toml:4:14: workers.web.cpu_weight: must be between 1 and 10000, got 0");
    CHECK(one_error(web_with("io_weight = 10001")) ==
          "t.toml:4:13: workers.web.io_weight: must be between 1 and 10000, got 10001");
    CHECK(one_error(web_with(R"(cpu_weight = "infinity")")) ==
          "t.toml:4:14: workers.web.cpu_weight: expected an integer, got a string");

    CHECK(one_error(web_with("pids_max = 0")) == "t.toml:4:12: workers.web.pids_max: must be between 1 and 4194304, got 0");
    CHECK(one_error(web_with("pids_max = 4194305")) ==
          "t.toml:4:12: workers.web.pids_max: must be between 1 and 4194304, got 4194305");
    CHECK(one_error(web_with(R"(pids_max = "lots")")) ==
          "t.toml:4:12: workers.web.pids_max: invalid value \"lots\" (expected an integer or \"infinity\")");
    CHECK(one_error(web_with("pids_max = 1.5")) ==
          "t.toml:4:12: workers.web.pids_max: expected an integer or \"infinity\", got a float");
}

TEST_CASE("resources: bad durations") {
    CHECK(one_error(web_with(R"(recycle_memory = "1G"
recycle_after = "0s")")) == "t.toml:5:17: workers.web.recycle_after: must be greater than 0");
    CHECK(one_error(web_with(R"(max_age = "0ms")")) == "t.toml:4:11: workers.web.max_age: must be greater than 0");
    CHECK(one_error(web_with("max_age = 3600")) ==
          "t.toml:4:11: workers.web.max_age: expected a duration string like \"10s\", got an integer");
    CHECK(one_error(web_with(R"(max_age = "1h"
max_age_jitter = "1 m")")).starts_with("t.toml:5:18: workers.web.max_age_jitter: invalid duration \"1 m\""));
}

TEST_CASE("resources: limits need kill_mode = \"cgroup\", each reported at its key") {
    auto errors = errors_of(R"(
[workers.web]
command = ["/bin/app"]
memory_max = "1G"
memory_high = "512M"
memory_swap_max = 0
cpu_max = "50%"
cpu_weight = 10
pids_max = 100
io_weight = 10
)");
    const std::string need = ": limits need kill_mode = \"cgroup\" (fdsupd writes them into each instance's cgroup)";
    CHECK(errors == std::vector<std::string>{
                        "t.toml:3:14: workers.web.memory_max" + need,
                        "t.toml:4:15: workers.web.memory_high" + need,
                        "t.toml:5:19: workers.web.memory_swap_max" + need,
                        "t.toml:6:11: workers.web.cpu_max" + need,
                        "t.toml:7:14: workers.web.cpu_weight" + need,
                        "t.toml:8:12: workers.web.pids_max" + need,
                        "t.toml:9:13: workers.web.io_weight" + need,
                    });
    CHECK(one_error(web_with("pids_max = 64", "process")) == "t.toml:4:12: workers.web.pids_max" + need);
    CHECK(one_error(web_with("memory_max = \"1G\"\npids_max = \"infinity\"", "group")) ==
          "t.toml:4:14: workers.web.memory_max" + need);
}

TEST_CASE("resources: a recycle key without its partner has no effect, and is an error") {
    CHECK(one_error(web_with(R"(recycle_after = "1m")")) ==
          "t.toml:4:17: workers.web.recycle_after: has no effect without recycle_memory (it is how long an "
          "instance's memory use must stay above recycle_memory before the instance is replaced)");
    CHECK(one_error(web_with(R"(max_age_jitter = "10m")")) ==
          "t.toml:4:18: workers.web.max_age_jitter: has no effect without max_age (it spreads each instance's "
          "max_age over a random share of it)");
    // The partner switched off on purpose is given.
    CHECK(errors_of(web_with("max_age_jitter = \"10m\"\nrecycle_after = \"1m\"\nrecycle_memory = \"infinity\"")) ==
          std::vector<std::string>{
              "t.toml:4:18: workers.web.max_age_jitter: has no effect without max_age (it spreads each instance's "
              "max_age over a random share of it)"});
}

TEST_CASE("resources: recycle_memory must be below memory_max") {
    CHECK(one_error(web_with("memory_max = \"1G\"\nrecycle_memory = \"1G\"")) ==
          "t.toml:5:18: workers.web.recycle_memory: 1G is not below memory_max (1G): the kernel's OOM killer would "
          "act before the recycle could");
    CHECK(one_error(web_with("recycle_memory = \"2G\"\nmemory_max = 1073741824")) ==
          "t.toml:4:18: workers.web.recycle_memory: 2G is not below memory_max (1G): the kernel's OOM killer would "
          "act before the recycle could");
    CHECK(valid(web_with("memory_max = \"1G\"\nrecycle_memory = \"1023M\"")).workers[0].recycle.memory == 1023 * MiB);
    valid(web_with("memory_max = \"infinity\"\nrecycle_memory = \"8G\""));
    valid(web_with("memory_max = \"1G\"\nrecycle_memory = \"infinity\""));
}

TEST_CASE("resources: memory_high at or above memory_max is allowed, with a warning") {
    auto r = load(web_with("memory_max = \"1G\"\nmemory_high = \"2G\""));
    REQUIRE(r.config);
    CHECK(r.config->workers[0].limits.memory_high == 2 * GiB);
    CHECK(warnings_of(web_with("memory_max = \"1G\"\nmemory_high = \"2G\"")) ==
          std::vector<std::string>{"t.toml:5:15: warning: workers.web.memory_high: 2G is not below memory_max (1G), "
                                   "so it never throttles: the instance reaches memory_max first"});
    CHECK(warnings_of(web_with("memory_high = \"1G\"\nmemory_max = \"1G\"")).size() == 1);
    CHECK(warnings_of(web_with("memory_high = \"1G\"\nmemory_max = \"1025M\"")).empty());
    CHECK(warnings_of(web_with("memory_high = \"1G\"")).empty());
}

TEST_CASE("resources: recycle_memory at or above memory_high is allowed, with a warning") {
    CHECK(warnings_of(web_with("memory_high = \"1G\"\nrecycle_memory = \"1G\"")) ==
          std::vector<std::string>{
              "t.toml:5:18: warning: workers.web.recycle_memory: 1G is not below memory_high (1G): the kernel "
              "throttles the instance there, so its use may never reach recycle_memory"});
    CHECK(warnings_of(web_with("memory_high = \"1G\"\nrecycle_memory = \"768M\"")).empty());
}

TEST_CASE("resources: the keys are known keys, and near misses are suggested") {
    CHECK(one_error(web_with(R"(memory_maxx = "1G")")) ==
          "t.toml:4:1: unknown key \"memory_maxx\" in [workers.web] (did you mean \"memory_max\"?)");
    CHECK(one_error(web_with(R"(max_age_jiter = "1m")")) ==
          "t.toml:4:1: unknown key \"max_age_jiter\" in [workers.web] (did you mean \"max_age_jitter\"?)");
    CHECK(one_error(web_with("pid_max = 5")) ==
          "t.toml:4:1: unknown key \"pid_max\" in [workers.web] (did you mean \"pids_max\"?)");
}
