#pragma once

// version: RINGIO_VERSION_MAJOR, _MINOR, _PATCH and RINGIO_VERSION.

/// ringio's major version: incremented for incompatible API changes.
#define RINGIO_VERSION_MAJOR 0
/// ringio's minor version: incremented for added functionality.
#define RINGIO_VERSION_MINOR 2
/// ringio's patch version: incremented for fixes.
#define RINGIO_VERSION_PATCH 0
/// The version as one comparable number: major * 10000 + minor * 100 + patch.
#define RINGIO_VERSION                                                                             \
    (RINGIO_VERSION_MAJOR * 10000 + RINGIO_VERSION_MINOR * 100 + RINGIO_VERSION_PATCH)
