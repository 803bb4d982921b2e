#include "cli/app.h"

int main(int argc, char** argv) { return peft::cli::run(argc, argv); }
