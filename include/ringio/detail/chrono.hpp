#pragma once

// Durations and clocks, without the rest of <chrono>. In C++20, libstdc++'s <chrono> also
// brings the calendar, time zones and their formatting (<sstream>, locales): about a tenth of
// what examples/echo_server.cpp takes to parse, for names the library never uses. libstdc++
// keeps durations, time points, clocks and their literals in a header of their own; other
// standard libraries get the whole of <chrono>. A user who wants the calendar includes
// <chrono> as usual.
#if __has_include(<bits/chrono.h>)
#include <bits/chrono.h>
#else
#include <chrono>
#endif
