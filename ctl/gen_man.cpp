// Writes fdsupctl(8) to stdout (run at build time: ctl/CMakeLists.txt).
#include <cstdio>

#include "ctl/arguments.h"
#include "version.h"

int main() {
    std::fputs(fdsup::ctl::man_page(fdsup::kVersion).c_str(), stdout);
    return 0;
}
