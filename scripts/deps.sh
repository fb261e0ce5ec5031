# Sourced by the other scripts: installs the Debian packages that are missing, and only those.
# Usage: ringio_require package...
ringio_require() {
    local missing=()
    local package
    for package in "$@"; do
        dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed' ||
            missing+=("$package")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "ringio: installing ${missing[*]}"
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends \
        "${missing[@]}" >/dev/null
}

# The build and test toolchain every script needs. The presets and the documented install use
# Ninja; netbase gives /etc/hosts (localhost, which the examples and tests resolve) and
# /etc/services (service names), which Debian's minimal systems lack.
ringio_base_packages=(g++ cmake ninja-build pkg-config liburing-dev catch2 netbase)
