#include "cli/logging.h"

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "common/error.h"
#include "common/files.h"

namespace peft::cli {
namespace {

spdlog::level::level_enum parse_level(const std::string& level) {
  // "warn" and "error" are spdlog's names too; the schema already restricted the value.
  return spdlog::level::from_str(level);
}

}  // namespace

void setup_logging(const std::string& level) {
  // Logs go to stderr so that stdout carries only a command's output (YAML, tables, JSON).
  auto console = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
  auto logger = std::make_shared<spdlog::logger>("peft", console);
  logger->set_level(parse_level(level));
  logger->set_pattern("[%H:%M:%S] [%^%l%$] %v");
  logger->flush_on(spdlog::level::info);
  spdlog::set_default_logger(logger);
}

void add_log_file(const std::filesystem::path& dir) {
  auto logger = spdlog::default_logger();
  try {
    auto file = std::make_shared<spdlog::sinks::basic_file_sink_mt>((dir / "log.txt").string(), /*truncate=*/false);
    file->set_pattern("[%Y-%m-%d %H:%M:%S.%e] [%l] %v");
    logger->sinks().push_back(file);
  } catch (const spdlog::spdlog_ex& e) {
    throw InputError(where((dir / "log.txt").string()) + "cannot open for writing (" + e.what() + ")");
  }
}

void prepare_run_dir(const Config& config) {
  const std::filesystem::path dir = config.run.out;
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec || !std::filesystem::is_directory(dir))
    throw InputError(where(dir.string()) + "run.out: cannot create the run folder (" + ec.message() + ")");
  write_file_atomic(dir / "config.resolved.yaml", to_yaml(config));
  add_log_file(dir);
  spdlog::info("run folder {}", dir.string());
}

}  // namespace peft::cli
