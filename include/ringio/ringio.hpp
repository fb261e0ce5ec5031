#pragma once

/// The umbrella header: includes every public ringio header.

#include <ringio/map_options.hpp>
#include <ringio/mappable.hpp>
#include <ringio/mapped.hpp>
#include <ringio/shared_atomic_ref.hpp>
#include <ringio/version.hpp>
