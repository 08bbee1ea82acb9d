# Warnings are errors for our own targets only, never for dependencies.
function(egress_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Werror -Wno-missing-field-initializers)
endfunction()
