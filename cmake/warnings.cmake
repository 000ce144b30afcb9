# dpnode_warnings: the warning set of dpnode's own targets (third-party
# headers are SYSTEM), -Werror when DPNODE_WERROR is on. Included by the
# top-level project and by the standalone libFuzzer build.
add_library(dpnode_warnings INTERFACE)
target_compile_options(dpnode_warnings INTERFACE -Wall -Wextra -Wpedantic -Wshadow
                       -Wnon-virtual-dtor -Wimplicit-fallthrough)
if(DPNODE_WERROR)
  target_compile_options(dpnode_warnings INTERFACE -Werror)
endif()
