#!/usr/bin/env bash
# fdsup's developer entry point (the README's two commands):
#   ./dev.sh demo   install what is needed, build, run the demo (conf/fdsup.toml)
#   ./dev.sh test   install what is needed, build, run every test (also under ASan+UBSan),
#                   and each libFuzzer target for 15 s
#   ./dev.sh fuzz   build the libFuzzer targets and run each for FDSUP_FUZZ_SECONDS
#                   (default 600)
#   ./dev.sh build  install and build only
#   ./dev.sh bench  build and run the benchmarks in tests/bench (~20 min; writes
#                   tests/bench/RESULTS.md and restart_latency.png)
set -euo pipefail
cd "$(dirname "$0")"

# Up to zlib1g-dev, what the build needs (libncurses-dev: fdsupctl top's screen; zlib: the
# gzip of rotated worker logs). The rest are for tests only: logrotate runs the installed
# snippet; the test workers speak sd_notify through the real libsystemd; ApacheBench
# (apache2-utils) is the HTTP client of the load tests; systemd
# brings systemd-analyze (the units are verified) and systemd-socket-activate; groff
# renders the man pages; prometheus brings promtool (the metrics page is checked).
# The benchmarks compare fdsupd with supervisor, runit and s6 (their binaries, run in
# temp dirs; on a machine run by systemd, Debian also starts the supervisor package's own
# idle supervisor.service, which the benchmarks do not use) and plot with gnuplot;
# ctest's "bench: smoke" runs them too, so they are installed for the tests as well.
# tmux is the terminal `fdsupctl top`'s screen is tested in.
# What users pick instead for zero-downtime restarts is benchmarked too, with the same
# Node.js app (nodejs): Server::Starter's start_server (libserver-starter-perl), and pm2,
# which is not packaged by Debian: npm installs it from the registry at a pinned version
# into build/bench-peers (install_pm2 below; tests/bench/pm2_peer.py is the one place).
# linux-perf: the respawn benchmark times its stages with the kernel's tracepoints.
PACKAGES=(g++ cmake make pkg-config python3 libuv1-dev libtomlplusplus-dev libspdlog-dev doctest-dev nlohmann-json3-dev
          libncurses-dev zlib1g-dev
          libsystemd-dev logrotate apache2-utils systemd groff-base prometheus supervisor runit s6 gnuplot-nox
          nodejs python3-gunicorn tmux libserver-starter-perl linux-perf)
# The fuzz targets need a clang whose C++23 library support covers std::expected (with
# Debian 12's libstdc++ that is clang 19, from Debian's own bookworm packages) and its
# libFuzzer runtime.
PACKAGES+=(clang-19 libclang-rt-19-dev)
JOBS=$(nproc 2>/dev/null || echo 2)

install_packages() {
    apt_install "${PACKAGES[@]}"
    # npm installs pm2. Debian's nodejs needs Debian's npm package; a nodejs from nodesource
    # brings its own npm and conflicts with Debian's, so the package is asked for only once
    # nodejs is in and there is still no npm command.
    command -v npm >/dev/null 2>&1 || apt_install npm
}

# apt_install PACKAGE...: those not installed yet.
apt_install() {
    local missing=()
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "dev.sh: installing ${missing[*]}"
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -q
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
}

# install_pm2 BUILD_DIR: pm2 for the benchmarks (ctest's "bench: smoke" runs them too) into
# BUILD_DIR/bench-peers. An npm registry that cannot be reached is no failure (the pm2 rows
# are skipped, saying so); anything else is.
install_pm2() {
    python3 tests/bench/pm2_peer.py "$1"
}

# build DIR [cmake options...]
build() {
    local dir=$1; shift
    cmake -S . -B "$dir" -DFDSUP_WERROR=ON "$@" >/dev/null
    cmake --build "$dir" -j "$JOBS"
}

# build_fuzz DIR SECONDS: the libFuzzer targets only (tests/fuzz), each run by ctest for SECONDS.
build_fuzz() {
    cmake -S . -B "$1" -DFDSUP_FUZZ=ON -DFDSUP_FUZZ_SECONDS="$2" -DFDSUP_WERROR=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo \
        -DCMAKE_C_COMPILER=clang-19 -DCMAKE_CXX_COMPILER=clang++-19 >/dev/null
    cmake --build "$1" -j "$JOBS"
}

case "${1:-}" in
    demo)
        install_packages
        build build
        echo "dev.sh: demo on http://127.0.0.1:8080/ (Ctrl-C stops it)"
        exec build/supervisord/fdsupd -c conf/fdsup.toml
        ;;
    build)
        install_packages
        build build
        ;;
    test)
        install_packages
        build build
        install_pm2 build
        (cd build && ctest --output-on-failure -j "$JOBS")
        # The same tests with AddressSanitizer and UndefinedBehaviorSanitizer.
        build build-asan -DFDSUP_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug
        (cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 \
            UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ctest --output-on-failure -j "$JOBS")
        # The parsers of untrusted input under libFuzzer, a short run of each.
        build_fuzz build-fuzz 15
        (cd build-fuzz && ctest --output-on-failure -j "$JOBS")
        ;;
    fuzz)
        install_packages
        build_fuzz build-fuzz "${FDSUP_FUZZ_SECONDS:-600}"
        (cd build-fuzz && ctest --output-on-failure -j "$JOBS")
        ;;
    bench)
        install_packages
        build build
        install_pm2 build
        python3 tests/bench/run.py build
        ;;
    *)
        echo "usage: ./dev.sh demo|test|build|bench|fuzz" >&2
        exit 2
        ;;
esac
