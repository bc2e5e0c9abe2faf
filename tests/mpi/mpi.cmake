# MPI tests of `piracy-abm experiment`, `calibrate` and `sensitivity` (included optionally by
# tests/CMakeLists.txt). Experiment: the tiny
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

# calibrate and sensitivity under MPI (issue 6): every rank runs the same optimiser and shares
# each batch of simulations round-robin (engine/calibration.hpp), so the tiny calibration and
# sensitivity analysis of tests/app/fixtures/calibration on 2 and 3 ranks (3 does not divide the
# batches evenly) must write the same tables and journal as without mpirun.
set(PIRACY_MPI_CAL ${PROJECT_SOURCE_DIR}/tests/app/fixtures/calibration)
foreach(command calibrate sensitivity)
  if(command STREQUAL "calibrate")
    set(file ${PIRACY_MPI_CAL}/tiny_fit.yaml)
    set(tables fit.csv parameters.csv trace.csv journal.jsonl)
  else()
    set(file ${PIRACY_MPI_CAL}/tiny_sensitivity.yaml)
    set(tables samples.csv morris.csv sobol.csv journal.jsonl)
  endif()
  add_test(NAME "mpi: ${command} without mpirun"
           COMMAND $<TARGET_FILE:piracy-abm> ${command} ${file} --jobs 1 --force -q -o ${PIRACY_MPI_OUT}/${command}_plain)
  set_tests_properties("mpi: ${command} without mpirun" PROPERTIES
                       FIXTURES_SETUP piracy_mpi_${command} LABELS mpi TIMEOUT 600)
  foreach(ranks 2 3)
    add_test(NAME "mpi: ${command} on ${ranks} ranks"
             COMMAND ${MPIEXEC_EXECUTABLE} ${MPIEXEC_NUMPROC_FLAG} ${ranks} --oversubscribe ${MPIEXEC_PREFLAGS}
                     $<TARGET_FILE:piracy-abm> ${command} ${file} --jobs 1 --force -q
                     -o ${PIRACY_MPI_OUT}/${command}_ranks${ranks} ${MPIEXEC_POSTFLAGS})
    set_tests_properties("mpi: ${command} on ${ranks} ranks" PROPERTIES
                         ENVIRONMENT "${PIRACY_MPI_ENV}" FIXTURES_SETUP piracy_mpi_${command}
                         RUN_SERIAL TRUE LABELS mpi TIMEOUT 600)
    foreach(table ${tables})
      add_test(NAME "mpi: ${command} ${table} on ${ranks} ranks equals the run without mpirun"
               COMMAND ${CMAKE_COMMAND} -E compare_files ${PIRACY_MPI_OUT}/${command}_plain/${table}
                       ${PIRACY_MPI_OUT}/${command}_ranks${ranks}/${table})
      set_tests_properties("mpi: ${command} ${table} on ${ranks} ranks equals the run without mpirun" PROPERTIES
                           FIXTURES_REQUIRED piracy_mpi_${command} LABELS mpi)
    endforeach()
  endforeach()
endforeach()

# The SOBOL global phase (one batch of candidates shared by the ranks) on 3 ranks.
set(PIRACY_MPI_SOBOL --set optimizer.global=SOBOL --set optimizer.global_evals=6 --set optimizer.local_evals=3)
add_test(NAME "mpi: calibrate (SOBOL global phase) without mpirun"
         COMMAND $<TARGET_FILE:piracy-abm> calibrate ${PIRACY_MPI_CAL}/tiny_fit.yaml ${PIRACY_MPI_SOBOL} --jobs 1 --force
                 -q -o ${PIRACY_MPI_OUT}/sobol_plain)
set_tests_properties("mpi: calibrate (SOBOL global phase) without mpirun" PROPERTIES
                     FIXTURES_SETUP piracy_mpi_sobol LABELS mpi TIMEOUT 600)
add_test(NAME "mpi: calibrate (SOBOL global phase) on 3 ranks"
         COMMAND ${MPIEXEC_EXECUTABLE} ${MPIEXEC_NUMPROC_FLAG} 3 --oversubscribe ${MPIEXEC_PREFLAGS}
                 $<TARGET_FILE:piracy-abm> calibrate ${PIRACY_MPI_CAL}/tiny_fit.yaml ${PIRACY_MPI_SOBOL} --jobs 1 --force
                 -q -o ${PIRACY_MPI_OUT}/sobol_ranks3 ${MPIEXEC_POSTFLAGS})
set_tests_properties("mpi: calibrate (SOBOL global phase) on 3 ranks" PROPERTIES
                     ENVIRONMENT "${PIRACY_MPI_ENV}" FIXTURES_SETUP piracy_mpi_sobol RUN_SERIAL TRUE LABELS mpi
                     TIMEOUT 600)
foreach(table fit.csv parameters.csv trace.csv journal.jsonl)
  add_test(NAME "mpi: calibrate (SOBOL) ${table} on 3 ranks equals the run without mpirun"
           COMMAND ${CMAKE_COMMAND} -E compare_files ${PIRACY_MPI_OUT}/sobol_plain/${table}
                   ${PIRACY_MPI_OUT}/sobol_ranks3/${table})
  set_tests_properties("mpi: calibrate (SOBOL) ${table} on 3 ranks equals the run without mpirun" PROPERTIES
                       FIXTURES_REQUIRED piracy_mpi_sobol LABELS mpi)
endforeach()

# A refusal on rank 0 (here: the output directory exists, no --resume or --force) stops every
# rank with exit 2 and one message, instead of leaving ranks > 0 waiting for work (a hang would
# hit the timeout).
add_test(NAME "mpi: calibrate on 2 ranks refuses an existing directory without hanging"
         COMMAND ${MPIEXEC_EXECUTABLE} ${MPIEXEC_NUMPROC_FLAG} 2 --oversubscribe ${MPIEXEC_PREFLAGS}
                 $<TARGET_FILE:piracy-abm> calibrate ${PIRACY_MPI_CAL}/tiny_fit.yaml --jobs 1 -q
                 -o ${PIRACY_MPI_OUT}/calibrate_plain ${MPIEXEC_POSTFLAGS})
set_tests_properties("mpi: calibrate on 2 ranks refuses an existing directory without hanging" PROPERTIES
                     ENVIRONMENT "${PIRACY_MPI_ENV}" FIXTURES_REQUIRED piracy_mpi_calibrate
                     PASS_REGULAR_EXPRESSION "is not empty: continue with --resume" RUN_SERIAL TRUE LABELS mpi
                     TIMEOUT 120)
