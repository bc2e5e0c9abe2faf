# Writes the version header with the commit the sources are at *when the build runs* (not when
# CMake configured the build folder: a reused build folder recorded a stale commit in every
# manifest). configure_file rewrites the header only when its text changes, so the few files
# that include it are recompiled only after a commit (or when the tree turns clean or dirty).
# Inputs: SRC (source folder), IN (template), OUT (header), VERSION (project version).
execute_process(COMMAND git rev-parse --short=12 HEAD
                WORKING_DIRECTORY ${SRC}
                OUTPUT_VARIABLE PIRACY_GIT_COMMIT OUTPUT_STRIP_TRAILING_WHITESPACE
                RESULT_VARIABLE rev_failed ERROR_QUIET)
if(rev_failed OR NOT PIRACY_GIT_COMMIT)
  set(PIRACY_GIT_COMMIT "unknown")
else()
  # Uncommitted changes to tracked files: the binary is not the commit's, say so.
  execute_process(COMMAND git status --porcelain --untracked-files=no
                  WORKING_DIRECTORY ${SRC}
                  OUTPUT_VARIABLE changes OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
  if(changes)
    string(APPEND PIRACY_GIT_COMMIT "-dirty")
  endif()
endif()
set(PROJECT_VERSION ${VERSION})
configure_file(${IN} ${OUT} @ONLY)
