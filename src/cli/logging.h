// Logging for every command: spdlog's default logger writes to stderr (colour when a tty) and, once a run folder
// exists, also to <run.out>/log.txt. Other modules just call spdlog::info(...) etc.
#pragma once
#include <filesystem>
#include <string>

#include "config/config.h"

namespace peft::cli {

// Installs the console logger at `level` (trace|debug|info|warn|error). Safe to call more than once.
void setup_logging(const std::string& level);

// Adds <dir>/log.txt (appended, so a resumed run keeps its history) to the default logger.
void add_log_file(const std::filesystem::path& dir);

// Creates run.out, writes config.resolved.yaml there atomically (every key, defaults included) and starts
// log.txt. Called by the dispatcher before pretrain / adapt / eval.
void prepare_run_dir(const Config& config);

}  // namespace peft::cli
