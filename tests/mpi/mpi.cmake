# MPI tests of `piracy-abm experiment` (included optionally by tests/CMakeLists.txt): the tiny
# two-arm experiment (tests/app/fixtures/experiments/arms.yaml, 2 arms x 8 replicates) on 1, 2
# and 4 ranks and without mpirun must write identical runs.csv, effects.csv and series.csv:
# ranks share the runs round-robin and rank 0 journals and writes, so the tables depend on
# nothing but the plan. As root, Open MPI needs OMPI_ALLOW_RUN_AS_ROOT(_CONFIRM); 4 ranks on a
# 2-core machine need --oversubscribe. Each rank runs one simulation at a time (--jobs 1).
if(NOT PIRACY_WITH_MPI OR NOT MPIEXEC_EXECUTABLE)
  return()
endif()
# Not in sanitizer builds: Open MPI's own allocations at MPI_Finalize are reported as leaks by
# LeakSanitizer and abort every rank (checked with Open MPI 4.1.4). The release build runs these
# tests; the sanitizer build still runs the experiment tests without mpirun.
if(PIRACY_SANITIZE)
  return()
endif()

set(PIRACY_MPI_OUT ${CMAKE_CURRENT_BINARY_DIR}/mpi)
set(PIRACY_MPI_EXPERIMENT ${PROJECT_SOURCE_DIR}/tests/app/fixtures/experiments/arms.yaml)
set(PIRACY_MPI_ARGS experiment ${PIRACY_MPI_EXPERIMENT} --set replicates=8 --jobs 1 --force -q)
set(PIRACY_MPI_ENV "OMPI_ALLOW_RUN_AS_ROOT=1;OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1;OMPI_MCA_rmaps_base_oversubscribe=1")

add_test(NAME "mpi: experiment without mpirun"
         COMMAND $<TARGET_FILE:piracy-abm> ${PIRACY_MPI_ARGS} -o ${PIRACY_MPI_OUT}/plain)
set_tests_properties("mpi: experiment without mpirun" PROPERTIES
                     FIXTURES_SETUP piracy_mpi_runs LABELS mpi TIMEOUT 600)
foreach(ranks 1 2 4)
  add_test(NAME "mpi: experiment on ${ranks} ranks"
           COMMAND ${MPIEXEC_EXECUTABLE} ${MPIEXEC_NUMPROC_FLAG} ${ranks} --oversubscribe ${MPIEXEC_PREFLAGS}
                   $<TARGET_FILE:piracy-abm> ${PIRACY_MPI_ARGS} -o ${PIRACY_MPI_OUT}/ranks${ranks}
                   ${MPIEXEC_POSTFLAGS})
  set_tests_properties("mpi: experiment on ${ranks} ranks" PROPERTIES
                       ENVIRONMENT "${PIRACY_MPI_ENV}" FIXTURES_SETUP piracy_mpi_runs
                       RUN_SERIAL TRUE LABELS mpi TIMEOUT 600)
endforeach()

foreach(ranks 1 2 4)
  foreach(table runs.csv effects.csv series.csv means.csv)
    add_test(NAME "mpi: ${table} on ${ranks} ranks equals the run without mpirun"
             COMMAND ${CMAKE_COMMAND} -E compare_files ${PIRACY_MPI_OUT}/plain/${table}
                     ${PIRACY_MPI_OUT}/ranks${ranks}/${table})
    set_tests_properties("mpi: ${table} on ${ranks} ranks equals the run without mpirun" PROPERTIES
                         FIXTURES_REQUIRED piracy_mpi_runs LABELS mpi)
  endforeach()
endforeach()
