# Notebooks (issue 7): each notebook in notebooks/ is executed headlessly with Debian's Python
# (/usr/bin/python3 -m nbconvert --to notebook --execute), which fails when a cell raises; the
# test then checks that the notebook wrote each of its figures as a PNG file. The notebooks run
# the program of THIS build (PIRACY_ABM) and write their runs and figures under this build's
# tests/notebooks/<name>/, never into the source tree.
#
# Labels: `notebooks`, and `slow` because each runs the full default scenario over several seeds
# (the sanitizer run of .ci/run skips them with `ctest -LE notebooks`: ~40 default runs at
# ASan speed would not fit in CI; the commands they drive run sanitised in the CLI tests).
# PROCESSORS 2: a notebook runs two model processes at once, so ctest -j2 runs it alone and its
# time stays comparable with the notebooks' 2-minute budget.
set(PIRACY_NOTEBOOK_RUNNER ${CMAKE_CURRENT_LIST_DIR}/run_notebook.sh)

function(piracy_add_notebook_test name)
  set(test_name "notebooks: ${name}")
  add_test(NAME ${test_name}
           COMMAND /bin/sh ${PIRACY_NOTEBOOK_RUNNER}
                   ${PROJECT_SOURCE_DIR}/notebooks/${name}.ipynb
                   ${CMAKE_CURRENT_BINARY_DIR}/notebooks/${name}
                   ${ARGN})
  set_tests_properties(${test_name} PROPERTIES
    LABELS "notebooks;slow"
    TIMEOUT 1800
    PROCESSORS 2
    ENVIRONMENT "PIRACY_ABM=$<TARGET_FILE:piracy-abm>")
endfunction()

# name, then the figures (figures/<figure>.png) the notebook must write
piracy_add_notebook_test(01_sparks_crackdown
  01_releases_daily_weekly_monthly 01_topsites 01_sceners_sellers 01_recovery_fit)
piracy_add_notebook_test(02_studio_losses
  02_losses_by_channel 02_monthly_losses_revenue 02_sparks_attributed_loss)
piracy_add_notebook_test(03_policy_experiments
  03_effects_paired_unpaired 03_recovery_by_arm 03_monthly_scene_p2p_by_arm)
piracy_add_notebook_test(04_calibration_and_sensitivity
  04_calibration_fit_and_estimates 04_calibration_trace 04_calibration_p5_block 04_morris 04_sobol)
