# Builds and runs the consumer project in one of three ways (MODE): find_package against the
# package installed under PREFIX, add_subdirectory of RINGIO_SOURCE_DIR, or a bare compiler
# command line from `pkg-config --cflags --libs ringio`. With CMake, it uses GENERATOR and
# MAKE_PROGRAM, those of the build that runs it, rather than CMake's default generator (Unix
# Makefiles), whose make a system with Ninja alone does not have.
file(REMOVE_RECURSE ${BINARY_DIR})
file(MAKE_DIRECTORY ${BINARY_DIR})

function(run)
    execute_process(COMMAND ${ARGV} RESULT_VARIABLE result)
    if(NOT result EQUAL 0)
        string(REPLACE ";" " " command "${ARGV}")
        message(FATAL_ERROR "failed (${result}): ${command}")
    endif()
endfunction()

if(MODE STREQUAL "pkg_config")
    set(ENV{PKG_CONFIG_PATH} "${PREFIX}/share/pkgconfig")
    execute_process(COMMAND pkg-config --cflags --libs ringio
        OUTPUT_VARIABLE flags OUTPUT_STRIP_TRAILING_WHITESPACE RESULT_VARIABLE result)
    if(NOT result EQUAL 0)
        message(FATAL_ERROR "pkg-config does not know ringio under ${PREFIX}")
    endif()
    separate_arguments(flags UNIX_COMMAND "${flags}")
    run(${CXX} ${SOURCE_DIR}/consumer.cpp ${flags} -o ${BINARY_DIR}/consumer)
else()
    if(MODE STREQUAL "find_package")
        set(consume find_package)
    else()
        set(consume add_subdirectory)
    endif()
    run(${CMAKE_COMMAND} -S ${SOURCE_DIR} -B ${BINARY_DIR}
        "-G${GENERATOR}"
        -DCMAKE_MAKE_PROGRAM=${MAKE_PROGRAM}
        -DCMAKE_CXX_COMPILER=${CXX}
        -DCMAKE_PREFIX_PATH=${PREFIX}
        -DRINGIO_CONSUME=${consume}
        -DRINGIO_SOURCE_DIR=${RINGIO_SOURCE_DIR})
    run(${CMAKE_COMMAND} --build ${BINARY_DIR})
endif()
run(${BINARY_DIR}/consumer)
