#pragma once

/// The umbrella header: includes every public ringio header.

#include <ringio/version.hpp>
