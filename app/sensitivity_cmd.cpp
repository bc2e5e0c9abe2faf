// The `sensitivity` subcommand shares its options and driver with `calibrate` (app/calibrate_cmd.cpp).
#include "app/sensitivity_cmd.hpp"
