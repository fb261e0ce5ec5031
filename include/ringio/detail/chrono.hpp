#pragma once

// chrono: durations and clocks without the calendar, time zones and formatting of <chrono>.

// libstdc++ keeps durations, time points, clocks and their literals in a header of their own;
// its <chrono> also brings locales and streams, which the library never uses. Other standard
// libraries get the whole of <chrono>.
#if __has_include(<bits/chrono.h>)
#include <bits/chrono.h>
#else
#include <chrono>
#endif
