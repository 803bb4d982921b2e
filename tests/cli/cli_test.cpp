// Runs the real `peft` binary: exit codes, one-line errors, --help texts, `config` and `inspect` output.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include "common/files.h"
#include "config/config.h"
#include "config/schema.h"

namespace fs = std::filesystem;

namespace {

struct Result {
  int code = -1;
  std::string out, err;
};

fs::path temp_dir(const std::string& name) {
  const fs::path d = fs::temp_directory_path() / ("peft_cli_test_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

// Runs `peft ARGS` from the repository root; stdout and stderr captured separately.
Result run_peft(const std::string& args) {
  static const fs::path dir = temp_dir("io");
  const fs::path out = dir / "stdout", err = dir / "stderr";
  const std::string cmd = "cd '" + std::string(PEFT_SOURCE_DIR) + "' && '" + PEFT_BINARY + "' " + args + " >'" +
                          out.string() + "' 2>'" + err.string() + "'";
  const int status = std::system(cmd.c_str());
  Result r;
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.out = peft::read_file(out);
  r.err = peft::read_file(err);
  return r;
}

// The entry of `option` in CLI11's help: its first line (option token first) plus the more-indented lines after it.
std::string help_entry(const std::string& help, const std::string& option) {
  std::istringstream in(help);
  std::string line, entry;
  bool inside = false;
  while (std::getline(in, line)) {
    const size_t indent = line.find_first_not_of(' ');
    if (inside && indent != std::string::npos && indent > 2) {
      entry += "\n" + line;
      continue;
    }
    if (inside) break;
    if (indent != 2) continue;
    const std::string token = line.substr(2, line.find(' ', 2) - 2);
    if (token == option || token == "-h," + option) {
      inside = true;
      entry = line;
    }
  }
  return entry;
}

size_t count_lines(const std::string& s) { return std::count(s.begin(), s.end(), '\n'); }

}  // namespace

// One test per subcommand: each run of the binary loads LibTorch (~0.5 s), keep every test short.
const std::map<std::string, std::vector<std::string>> kHelpOptions = {
    {"pretrain", {"CONFIG", "--set", "--out", "--device", "--seed", "--threads", "--log-level", "--resume"}},
    {"adapt",
     {"CONFIG", "--variant", "--tasks", "--shots", "--seeds", "--set", "--out", "--device", "--seed", "--threads",
      "--log-level", "--resume"}},
    {"eval", {"CONFIG", "--set", "--out", "--device", "--seed", "--threads", "--log-level"}},
    {"bench",
     {"--config", "--model", "--methods", "--batch", "--src-len", "--tgt-len", "--tasks", "--steps", "--warmup", "--json",
      "--set", "--out", "--device", "--seed", "--threads", "--log-level"}},
    {"inspect", {"PATH"}},
    {"config", {"CONFIG", "--reference", "--set", "--out", "--device", "--seed", "--threads", "--log-level"}},
    {"data stats", {"CONFIG", "--set", "--out", "--device", "--seed", "--threads", "--log-level"}},
    {"export", {"ADAPTER_DIR", "--merge", "--out", "--log-level"}},
};

class CliHelp : public ::testing::TestWithParam<std::string> {};

TEST_P(CliHelp, ExplainsEveryOption) {
  const std::string sub = GetParam();
  const Result r = run_peft(sub + " --help");
  EXPECT_EQ(r.code, 0) << sub << r.err;
  for (const std::string& o : kHelpOptions.at(sub)) {
    const std::string entry = help_entry(r.out, o);
    EXPECT_FALSE(entry.empty()) << sub << " --help does not list " << o << ":\n" << r.out;
    // Its description is a sentence: words, ending with a period.
    EXPECT_TRUE(std::regex_search(entry, std::regex("[a-z]+ [a-z]+[^\\n]*\\.\\s*$")))
        << sub << " --help: " << o << " lacks a sentence: " << entry;
  }
}

INSTANTIATE_TEST_SUITE_P(Subcommands, CliHelp,
                         ::testing::Values("pretrain", "adapt", "eval", "bench", "inspect", "config", "data stats",
                                           "export"),
                         [](const auto& info) {
                           std::string n = info.param;
                           std::replace(n.begin(), n.end(), ' ', '_');
                           return n;
                         });

TEST(Cli, TopLevelHelpListsSubcommands) {
  const Result top = run_peft("--help");
  EXPECT_EQ(top.code, 0);
  for (const char* sub : {"pretrain", "adapt", "eval", "bench", "inspect", "config", "data", "export"})
    EXPECT_TRUE(std::regex_search(top.out, std::regex(std::string("\\n  ") + sub + " +[A-Z]"))) << sub;
}

TEST(Cli, ConfigPrintsResolvedYamlThatLoadsBack) {
  const Result r = run_peft("config configs/reference.yaml");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, peft::to_yaml(peft::default_config()));
  EXPECT_EQ(peft::load_config_string(r.out, "stdout"), peft::default_config());

  const Result s = run_peft("config configs/reference.yaml --set train.steps=7 --set adapt.seeds=[1,2] --out runs/zz --seed 5");
  ASSERT_EQ(s.code, 0) << s.err;
  const peft::Config c = peft::load_config_string(s.out, "stdout");
  EXPECT_EQ(c.train.steps, 7);
  EXPECT_EQ(c.adapt.seeds, (std::vector<int>{1, 2}));
  EXPECT_EQ(c.run.out, "runs/zz");
  EXPECT_EQ(c.run.seed, 5);
}

TEST(Cli, ReferenceIsTheCommittedFile) {
  const Result r = run_peft("config --reference");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, peft::read_file(fs::path(PEFT_SOURCE_DIR) / "configs/reference.yaml"));
}

TEST(Cli, BadConfigIsExitTwoWithOneLine) {
  const fs::path dir = temp_dir("bad");
  std::ofstream(dir / "x.yaml") << "train:\n  steps: 3\n  lerning_rate: 0.1\n";
  Result r = run_peft("config " + (dir / "x.yaml").string());
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(r.err, "peft: error: " + (dir / "x.yaml").string() +
                       ":3: unknown key 'lerning_rate' in 'train' (did you mean 'learning_rate'?)\n");
  EXPECT_EQ(r.out, "");

  r = run_peft("pretrain configs/nope.yaml");
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(r.err, "peft: error: configs/nope.yaml: cannot open file\n");

  r = run_peft("config configs/reference.yaml --set train.steps=abc");
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(r.err, "peft: error: --set train.steps=abc: expected an integer\n");
}

class CliParseError : public ::testing::TestWithParam<std::string> {};

TEST_P(CliParseError, IsExitTwoWithOneLine) {
  const Result r = run_peft(GetParam());
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(r.err.rfind("peft: error: ", 0), 0u) << r.err;
  EXPECT_EQ(count_lines(r.err), 1u) << r.err;
}

INSTANTIATE_TEST_SUITE_P(Args, CliParseError,
                         ::testing::Values("", "frobnicate", "pretrain", "pretrain a.yaml --bogus",
                                           "adapt c.yaml --variant nope", "pretrain c.yaml --device gpu", "data",
                                           "bench --batch 0", "adapt c.yaml --seeds 1 2"));

TEST(Cli, ParseErrorMessages) {
  EXPECT_EQ(run_peft("adapt c.yaml --variant nope").err,
            "peft: error: --variant: nope not in {mhr,mhr-z,mhr-mu,poly,poly-z,poly-mu,lora,ia3,adapter,compacter,prefix,mam,adamix,adamix-adapter,shared-lora,full,zero-shot}\n");
  EXPECT_EQ(run_peft("pretrain").err, "peft: error: CONFIG is required\n");
}

TEST(Cli, ConfigNeedsAFileOrReference) {
  const Result r = run_peft("config");
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(r.err, "peft: error: peft config: give a CONFIG file, or --reference for every key at its default\n");
}

TEST(Cli, RunCommandsWriteTheResolvedConfigAndLog) {
  // reference.yaml names no task data, so pretrain stops with one error line; the run folder is prepared first.
  const fs::path dir = temp_dir("run");
  const Result r = run_peft("pretrain configs/reference.yaml --out " + (dir / "r").string() +
                        " --set train.steps=3 --seed 9 --log-level warn");
  EXPECT_EQ(count_lines(r.err), 1u) << r.err;
  const peft::Config c = peft::load_config((dir / "r" / "config.resolved.yaml").string());
  EXPECT_EQ(c.train.steps, 3);
  EXPECT_EQ(c.run.seed, 9);
  EXPECT_EQ(c.run.out, (dir / "r").string());
  EXPECT_EQ(c.run.log_level, "warn");
  EXPECT_TRUE(fs::exists(dir / "r" / "log.txt"));
}

TEST(Cli, AdaptFlagsBecomeOverrides) {
  const fs::path dir = temp_dir("adapt");
  run_peft("adapt configs/reference.yaml --variant mhr-z --tasks t1,t2 --shots 16 --seeds 1,2 --out " +
       (dir / "a").string());
  const peft::Config c = peft::load_config((dir / "a" / "config.resolved.yaml").string());
  EXPECT_EQ(c.adapt.variants, (std::vector<std::string>{"mhr-z"}));
  EXPECT_EQ(c.adapt.tasks, (std::vector<std::string>{"t1", "t2"}));
  EXPECT_EQ(c.adapt.shots, 16);
  EXPECT_EQ(c.adapt.seeds, (std::vector<int>{1, 2}));
}

TEST(Cli, InspectDescribesACheckpoint) {
  const fs::path fixture = fs::path(PEFT_SOURCE_DIR) / "tests/fixtures/t5_tiny";
  if (!fs::exists(fixture / "model.safetensors")) GTEST_SKIP() << "fixtures not copied yet";
  const Result r = run_peft("inspect tests/fixtures/t5_tiny");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("== tests/fixtures/t5_tiny/config.json"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\"d_model\": 64"), std::string::npos);
  EXPECT_NE(r.out.find("(metadata: format=pt)"), std::string::npos);
  // shared.weight: vocab 128 x d_model 64
  EXPECT_TRUE(std::regex_search(r.out, std::regex("\\n  shared\\.weight +F32 +\\[128, 64\\] +8192\\n"))) << r.out;
  // 47 stored tensors, 173,056 parameters: ref.json's saved_tensor_names and num_parameters (transformers).
  EXPECT_NE(r.out.find("  total: 47 tensors, 173,056 parameters (173.06K), F32 173,056\n"), std::string::npos) << r.out;

  const Result missing = run_peft("inspect tests/fixtures/nope");
  EXPECT_EQ(missing.code, 2);
  EXPECT_EQ(missing.err, "peft: error: tests/fixtures/nope: no such file or directory\n");
}
