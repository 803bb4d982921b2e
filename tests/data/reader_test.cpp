// Readers of the three task layouts, their error messages, and the real data in ../shared and data/builtin.
#include <gtest/gtest.h>

#include <map>
#include <set>

#include "common/error.h"
#include "common/files.h"
#include "data/task.h"
#include "data_test_util.h"

namespace fs = std::filesystem;
using namespace peft::data;
using peft::data::testing::TempDir;

namespace {

const std::string kLine1 =
    R"({"id": "t-1", "task": "t", "definition": "Reverse the word.", "input": "abc", "outputs": ["cba"]})";
const std::string kLine2 =
    R"({"id": "t-2", "task": "t", "definition": "Reverse the word.", "input": "xy", "outputs": ["yx", "YX"]})";

// The InputError message of reading `content` as a JSON Lines file, "" when it reads fine.
std::string jsonl_error(const TempDir& dir, const std::string& content, std::string* file_out = nullptr) {
  const auto file = dir.write("x.jsonl", content);
  if (file_out) *file_out = file.generic_string();
  try {
    read_jsonl_examples(file);
  } catch (const peft::InputError& e) {
    return e.what();
  }
  return "";
}

std::map<std::string, std::string> snapshot(const fs::path& root) {
  std::map<std::string, std::string> m;
  for (const auto& f : fs::recursive_directory_iterator(root))
    if (f.is_regular_file()) m[f.path().string()] = peft::sha256_hex(peft::read_file(f.path()));
  return m;
}

}  // namespace

TEST(JsonlReader, ReadsExamplesAndSkipsBlankLines) {
  TempDir dir;
  const auto file = dir.write("t.jsonl", kLine1 + "\n\n" + kLine2 + "\n");
  std::string sha;
  const auto ex = read_jsonl_examples(file, &sha);
  ASSERT_EQ(ex.size(), 2u);
  EXPECT_EQ(ex[0].id, "t-1");
  EXPECT_EQ(ex[0].task, "t");
  EXPECT_EQ(ex[0].definition, "Reverse the word.");
  EXPECT_EQ(ex[0].input, "abc");
  EXPECT_EQ(ex[1].outputs, (std::vector<std::string>{"yx", "YX"}));
  EXPECT_EQ(sha, peft::sha256_hex(kLine1 + "\n\n" + kLine2 + "\n"));
}

TEST(JsonlReader, EveryMalformedCaseIsOneLineNamingFileAndLine) {
  TempDir dir;
  std::string f = (dir.path() / "x.jsonl").generic_string();
  // Missing field, on line 2 (line numbers count blank lines too).
  EXPECT_EQ(jsonl_error(dir, kLine1 + "\n" + R"({"id": "t-2", "task": "t", "definition": "d", "input": "x"})"),
            f + ":2: missing field 'outputs'");
  EXPECT_EQ(jsonl_error(dir, "\n" + std::string(R"({"task": "t", "definition": "d", "input": "x", "outputs": ["y"]})")),
            f + ":2: missing field 'id'");
  EXPECT_EQ(jsonl_error(dir, R"({"id": "a", "task": "t", "definition": "d", "input": "x", "outputs": []})"),
            f + ":1: field 'outputs' must be a non-empty list of strings");
  EXPECT_EQ(jsonl_error(dir, R"({"id": "a", "task": "t", "definition": "d", "input": "x", "outputs": "y"})"),
            f + ":1: field 'outputs' must be a non-empty list of strings");
  EXPECT_EQ(jsonl_error(dir, R"({"id": "a", "task": "t", "definition": "d", "input": "x", "outputs": ["y", 3]})"),
            f + ":1: field 'outputs' must be a non-empty list of strings");
  EXPECT_EQ(jsonl_error(dir, R"({"id": "a", "task": "t", "definition": "d", "input": 7, "outputs": ["y"]})"),
            f + ":1: field 'input' must be a string");
  EXPECT_EQ(jsonl_error(dir, kLine1 + "\n[1, 2]\n"), f + ":2: expected a JSON object");
  EXPECT_EQ(jsonl_error(dir, kLine1 + "\n" + kLine2 + "\n" +
                                 R"({"id": "u-1", "task": "u", "definition": "d", "input": "x", "outputs": ["y"]})"),
            f + ":3: task 'u' differs from 't' on line 1");
  // Empty task: an empty file, or one with only blank lines.
  EXPECT_EQ(jsonl_error(dir, ""), f + ": no examples");
  EXPECT_EQ(jsonl_error(dir, "\n  \n"), f + ": no examples");
  // Non-UTF-8 text: a lone 0xff byte inside the input string (byte 58 of the line).
  std::string bad = kLine1;
  bad.replace(bad.find("abc"), 3, "a\xff" "c");
  EXPECT_EQ(jsonl_error(dir, kLine2 + "\n" + bad + "\n"),
            f + ":2: text is not valid UTF-8 (byte " + std::to_string(bad.find('\xff') + 1) + " of the line)");
  // Malformed JSON: the parser's own wording follows, on the same line.
  const std::string msg = jsonl_error(dir, kLine1 + "\n" + R"({"id": "a", "task": )" + "\n");
  EXPECT_EQ(msg.rfind(f + ":2: malformed JSON: parse error at line 1, column ", 0), 0u) << msg;
  EXPECT_EQ(msg.find('\n'), std::string::npos);
  // A missing file is an InputError naming it.
  try {
    read_jsonl_examples(dir.path() / "nope.jsonl");
    FAIL() << "no error";
  } catch (const peft::InputError& e) {
    EXPECT_EQ(std::string(e.what()), (dir.path() / "nope.jsonl").generic_string() + ": cannot open file");
  }
}

TEST(JsonlReader, FindsInvalidUtf8) {
  EXPECT_EQ(find_invalid_utf8("plain ascii"), std::string::npos);
  EXPECT_EQ(find_invalid_utf8("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"), std::string::npos);  // é € 😀
  EXPECT_EQ(find_invalid_utf8("ab\xc3"), 2u);                // truncated sequence
  EXPECT_EQ(find_invalid_utf8("a\xc0\xaf"), 1u);             // overlong '/'
  EXPECT_EQ(find_invalid_utf8("a\xed\xa0\x80"), 1u);         // UTF-16 surrogate
  EXPECT_EQ(find_invalid_utf8("\x80"), 0u);                  // stray continuation byte
  EXPECT_EQ(find_invalid_utf8("ok\xf4\x90\x80\x80"), 2u);    // above U+10FFFF
}

TEST(LabelSet, RuleFromDistinctOutputs) {
  Task t;
  for (int i = 0; i < 6; ++i) t.examples.push_back({"", "t", "", "x", {i % 2 ? "yes" : "no"}});
  EXPECT_EQ(compute_label_set(t), (std::vector<std::string>{"no", "yes"}));
  // 3 labels over 5 instances: fewer than 2 per label -> free-form.
  t.examples.resize(5);
  t.examples[4].outputs = {"maybe"};
  EXPECT_TRUE(compute_label_set(t).empty());
  // 11 distinct outputs -> free-form even with many instances.
  Task u;
  for (int i = 0; i < 110; ++i) u.examples.push_back({"", "u", "", "x", {std::to_string(i % 11)}});
  EXPECT_TRUE(compute_label_set(u).empty());
  // One constant output is not a classification either.
  Task c;
  for (int i = 0; i < 10; ++i) c.examples.push_back({"", "c", "", "x", {"same"}});
  EXPECT_TRUE(compute_label_set(c).empty());
}

// A Super-NaturalInstructions directory in the official layout, built in the test.
namespace {
std::string official_task_json(const std::string& name, int n, bool labels) {
  std::string s = R"({"Definition": ["Answer the question about )" + name + R"("], "Positive Examples": [)" +
                  R"({"input": "p1", "output": "o1", "explanation": "because"}, {"input": "p2", "output": "o2"}],)" +
                  R"("Negative Examples": [], "Instances": [)";
  for (int i = 0; i < n; ++i) {
    if (i) s += ", ";
    const std::string out = labels ? (i % 2 ? "True" : "False") : "out" + std::to_string(i);
    s += R"({"id": ")" + name + "-" + std::to_string(i) + R"(", "input": "in)" + std::to_string(i) +
         R"(", "output": [")" + out + R"("]})";
  }
  return s + "]}";
}
}  // namespace

TEST(SuperNIOfficialReader, ReadsSplitsAndTaskFiles) {
  TempDir dir;
  dir.write("splits/default/train_tasks.txt", "task001_a\ntask002_b\n");
  dir.write("splits/default/test_tasks.txt", "task003_c\n");
  dir.write("tasks/task001_a.json", official_task_json("task001_a", 30, false));
  dir.write("tasks/task002_b.json", official_task_json("task002_b", 12, true));
  dir.write("tasks/task003_c.json", official_task_json("task003_c", 25, true));
  const auto before = snapshot(dir.path());
  ReadOptions opt;
  opt.n_eval_instances = 10;
  opt.max_train_instances = 20;
  const TaskSuite s = read_suite(dir.path(), opt);
  EXPECT_EQ(before, snapshot(dir.path()));  // reading never modifies inputs
  ASSERT_EQ(s.tasks.size(), 3u);
  const Task& a = s.tasks[0];
  EXPECT_EQ(a.name, "task001_a");
  EXPECT_EQ(a.split, "train");
  EXPECT_EQ(a.definition, "Answer the question about task001_a");
  ASSERT_EQ(a.positive_examples.size(), 2u);
  EXPECT_EQ(a.positive_examples[0].explanation, "because");
  EXPECT_EQ(a.positive_examples[1].explanation, "");
  EXPECT_EQ(a.examples.size(), 20u);  // capped, seeded sample
  EXPECT_TRUE(a.label_set.empty());
  EXPECT_EQ(a.content_sha256, peft::sha256_hex(official_task_json("task001_a", 30, false)));
  const Task& b = s.tasks[1];
  EXPECT_EQ(b.examples.size(), 12u);
  EXPECT_EQ(b.label_set, (std::vector<std::string>{"False", "True"}));
  const Task& c = s.tasks[2];
  EXPECT_EQ(c.split, "test");
  ASSERT_EQ(c.test_examples.size(), 10u);  // the first n_eval_instances
  EXPECT_EQ(c.test_examples[0].id, "task003_c-0");
  EXPECT_EQ(c.test_examples[9].id, "task003_c-9");
  ASSERT_EQ(c.examples.size(), 15u);
  EXPECT_EQ(c.examples[0].id, "task003_c-10");
  EXPECT_EQ(c.examples[0].outputs, std::vector<std::string>{"False"});
  // Same seed -> same sample; another seed -> another sample.
  EXPECT_EQ(read_superni_official(dir.path(), opt).tasks[0].examples[0].id, a.examples[0].id);
  opt.seed = 7;
  std::vector<std::string> ids1, ids2;
  for (const auto& e : a.examples) ids1.push_back(e.id);
  const TaskSuite reseeded = read_superni_official(dir.path(), opt);
  for (const auto& e : reseeded.tasks[0].examples) ids2.push_back(e.id);
  EXPECT_NE(ids1, ids2);
}

TEST(SuperNIOfficialReader, ErrorsNameFileAndPlace) {
  TempDir dir;
  dir.write("splits/default/train_tasks.txt", "task001_a\n");
  dir.write("splits/default/test_tasks.txt", "task003_c\n\ntask004_missing\n");
  dir.write("tasks/task001_a.json", official_task_json("task001_a", 3, false));
  dir.write("tasks/task003_c.json", official_task_json("task003_c", 3, false));
  auto error = [&]() -> std::string {
    try {
      read_superni_official(dir.path());
    } catch (const peft::InputError& e) {
      return e.what();
    }
    return "";
  };
  const std::string root = dir.path().generic_string();
  EXPECT_EQ(error(), root + "/splits/default/test_tasks.txt:3: task file tasks/task004_missing.json not found");
  ReadOptions skip;
  skip.skip_missing_tasks = true;
  EXPECT_EQ(read_superni_official(dir.path(), skip).tasks.size(), 2u);
  dir.write("splits/default/test_tasks.txt", "task003_c\n");
  EXPECT_EQ(error(), "");
  dir.write("tasks/task003_c.json", R"({"Definition": ["d"], "Positive Examples": []})");
  EXPECT_EQ(error(), root + "/tasks/task003_c.json: missing field 'Instances'");
  dir.write("tasks/task003_c.json",
            R"({"Definition": ["d"], "Positive Examples": [], "Instances": [{"id": "a", "input": "x", "output": ["y"]}, {"id": "b", "input": "x"}]})");
  EXPECT_EQ(error(), root + "/tasks/task003_c.json: Instances[1]: missing field 'output'");
  dir.write("tasks/task003_c.json", R"({"Definition": ["d"], "Positive Examples": [], "Instances": []})");
  EXPECT_EQ(error(), root + "/tasks/task003_c.json: no examples");
  dir.write("tasks/task003_c.json", "{\"Definition\": [\"d\"],\n\"Positive Examples\": [,]}");
  EXPECT_EQ(error().rfind(root + "/tasks/task003_c.json:2: malformed JSON: ", 0), 0u) << error();
  dir.write("tasks/task003_c.json", "{\"Definition\": [\"d\xfe\"]}");
  EXPECT_EQ(error(), root + "/tasks/task003_c.json:1: text is not valid UTF-8");
}

TEST(JsonlSuiteReader, ReadsWithoutTasksJsonAndChecksTasksJson) {
  TempDir dir;
  dir.write("train/t.jsonl", kLine1 + "\n" + kLine2 + "\n");
  const std::string u = R"({"id": "u-1", "task": "u", "definition": "D.", "input": "x", "outputs": ["y"]})";
  const std::string u2 = R"({"id": "u-2", "task": "u", "definition": "D.", "input": "z", "outputs": ["w"]})";
  dir.write("test/u.train.jsonl", u + "\n");
  dir.write("test/u.test.jsonl", u2 + "\n");
  TaskSuite s = read_suite(dir.path());
  ASSERT_EQ(s.tasks.size(), 2u);
  EXPECT_EQ(s.tasks[0].name, "t");
  EXPECT_EQ(s.tasks[0].split, "train");
  EXPECT_EQ(s.tasks[0].definition, "Reverse the word.");
  EXPECT_EQ(s.tasks[1].name, "u");
  EXPECT_EQ(s.tasks[1].split, "test");
  EXPECT_EQ(s.tasks[1].examples[0].id, "u-1");
  EXPECT_EQ(s.tasks[1].test_examples[0].id, "u-2");
  EXPECT_EQ(s.indices_of_split("test"), std::vector<size_t>{1});

  const std::string root = dir.path().generic_string();
  dir.write("tasks.json", R"({"tasks": [{"name": "t", "split": "train", "files": {"train": "train/t.jsonl"},
    "definition": "Meta definition", "positive_examples": [{"input": "ab", "output": "ba"}]},
    {"name": "u", "split": "held-out", "files": {"train": "test/u.train.jsonl", "test": "test/u.test.jsonl"}}]})");
  try {
    read_jsonl_suite(dir.path());
    FAIL();
  } catch (const peft::InputError& e) {
    EXPECT_EQ(std::string(e.what()), root + "/tasks.json: tasks[1]: field 'split' must be 'train' or 'test'");
  }
  dir.write("tasks.json", R"({"tasks": [{"name": "t", "split": "train", "files": {"train": "train/t.jsonl"},
    "definition": "Meta definition", "positive_examples": [{"input": "ab", "output": "ba"}]}]})");
  s = read_jsonl_suite(dir.path());
  ASSERT_EQ(s.tasks.size(), 1u);
  EXPECT_EQ(s.tasks[0].definition, "Meta definition");
  ASSERT_EQ(s.tasks[0].positive_examples.size(), 1u);
  EXPECT_EQ(s.tasks[0].positive_examples[0].output, "ba");
  // A line of the wrong task inside a task's file.
  dir.write("train/t.jsonl", u + "\n");
  try {
    read_jsonl_suite(dir.path());
    FAIL();
  } catch (const peft::InputError& e) {
    EXPECT_EQ(std::string(e.what()), root + "/train/t.jsonl: task 'u' does not match the task name 't'");
  }
}

TEST(SharedData, SuperNISubset) {
  const fs::path root = peft::data::testing::shared_dir() / "data" / "superni";
  if (!fs::exists(root)) GTEST_SKIP() << "shared SuperNI subset not found at " << root << " (../shared absent)";
  const TaskSuite s = read_suite(root);
  ASSERT_EQ(s.tasks.size(), 70u);
  EXPECT_EQ(s.indices_of_split("train").size(), 60u);
  EXPECT_EQ(s.indices_of_split("test").size(), 10u);
  size_t n_train = 0;
  for (size_t i : s.indices_of_split("train")) n_train += s.tasks[i].examples.size();
  EXPECT_EQ(n_train, 16174u);  // README: 16174 instances over 60 training tasks
  for (size_t i : s.indices_of_split("test")) {
    EXPECT_EQ(s.tasks[i].examples.size(), 100u) << s.tasks[i].name;
    EXPECT_EQ(s.tasks[i].test_examples.size(), 100u) << s.tasks[i].name;
    EXPECT_EQ(s.tasks[i].positive_examples.size(), 2u) << s.tasks[i].name;
  }
  const Task* ant = s.find("task1509_evalution_antonyms");
  ASSERT_NE(ant, nullptr);
  EXPECT_EQ(ant->examples[0].input, "abstract");
  EXPECT_EQ(ant->examples[0].outputs, std::vector<std::string>{"concrete"});
  const Task* copa = s.find("task1393_superglue_copa_text_completion");
  ASSERT_NE(copa, nullptr);
  EXPECT_EQ(copa->label_set, (std::vector<std::string>{"A", "B"}));
  EXPECT_EQ(copa->positive_examples[0].output, "A");
  EXPECT_EQ(s.find("task1289_trec_classification")->label_set.size(), 6u);
  size_t n_label_tasks = 0;
  for (const auto& t : s.tasks) n_label_tasks += !t.label_set.empty();
  EXPECT_EQ(n_label_tasks, 4u);  // trec (6), clariq (2), mmmlu (4), copa (2)
}

TEST(SharedData, BigBenchHard) {
  const fs::path root = peft::data::testing::shared_dir() / "data" / "bbh";
  if (!fs::exists(root)) GTEST_SKIP() << "shared BBH data not found at " << root << " (../shared absent)";
  const TaskSuite s = read_suite(root);
  ASSERT_EQ(s.tasks.size(), 27u);
  size_t n = 0;
  for (const auto& t : s.tasks) {
    n += t.examples.size();
    EXPECT_EQ(t.split, "test");
    EXPECT_TRUE(t.test_examples.empty());
    EXPECT_EQ(t.positive_examples.size(), 3u) << t.name;
  }
  EXPECT_EQ(n, 6511u);
  const Task* b = s.find("boolean_expressions");
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->definition, "Evaluate the result of a random Boolean expression.");
  EXPECT_EQ(b->examples[0].input, "not ( True ) and ( True ) is");
  EXPECT_EQ(b->examples[0].outputs, std::vector<std::string>{"False"});
  EXPECT_EQ(b->examples[0].id, "boolean_expressions-0");
  EXPECT_EQ(b->positive_examples[0].input, "not ( ( not not True ) ) is");
  EXPECT_EQ(b->positive_examples[0].output, "False");
  EXPECT_EQ(b->label_set, (std::vector<std::string>{"False", "True"}));
  EXPECT_EQ(s.find("causal_judgement")->examples.size(), 187u);
  EXPECT_TRUE(s.find("object_counting")->label_set.empty());  // 17 distinct answers > 10
  EXPECT_TRUE(s.find("word_sorting")->label_set.empty());
  size_t n_label_tasks = 0;
  for (const auto& t : s.tasks) n_label_tasks += !t.label_set.empty();
  EXPECT_EQ(n_label_tasks, 22u);  // all but dyck, multistep arithmetic, object counting, colored objects, sorting
  EXPECT_EQ(s.find("geometric_shapes")->label_set.size(), 9u);
}

TEST(BuiltinSuite, LayoutCountsAndDisjointHeldOut) {
  const fs::path root = fs::path(PEFT_SOURCE_DIR) / "data" / "builtin";
  if (!fs::exists(root / "tasks.json"))
    GTEST_SKIP() << "data/builtin not generated (python3 scripts/make_builtin_suite.py)";
  const TaskSuite s = read_suite(root);
  const auto train = s.indices_of_split("train"), test = s.indices_of_split("test");
  EXPECT_GE(train.size(), 18u);
  EXPECT_GE(test.size(), 6u);
  for (size_t i : train) EXPECT_EQ(s.tasks[i].examples.size(), 300u) << s.tasks[i].name;
  for (size_t i : test) {
    const Task& t = s.tasks[i];
    EXPECT_EQ(t.examples.size(), 100u);
    EXPECT_EQ(t.test_examples.size(), 100u);
    std::set<std::string> inputs;
    for (const auto& e : t.examples) inputs.insert(e.input);
    for (const auto& e : t.test_examples) EXPECT_EQ(inputs.count(e.input), 0u) << t.name << ": " << e.input;
  }
  const Task* ru = s.find("reverse_uppercase");
  ASSERT_NE(ru, nullptr);
  for (const auto& e : ru->test_examples) {
    std::string want(e.input.rbegin(), e.input.rend());
    for (auto& ch : want) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
    EXPECT_EQ(e.outputs[0], want);
  }
  EXPECT_EQ(s.find("add_parity")->label_set, (std::vector<std::string>{"even", "odd"}));
  EXPECT_EQ(s.find("sentiment")->label_set, (std::vector<std::string>{"negative", "positive"}));
}
