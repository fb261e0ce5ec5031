#pragma once

/// The umbrella header: includes every public ringio header.

#include <ringio/endpoint.hpp>
#include <ringio/resolve.hpp>
#include <ringio/version.hpp>
