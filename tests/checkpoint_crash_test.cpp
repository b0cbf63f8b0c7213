// A writer killed at any point of a checkpoint write leaves `latest` loadable and correct.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <random>
#include <thread>

#include "io/hdf5_checkpoint.h"
#include "test_util.h"

using namespace ovr;

namespace {

struct Child {
  pid_t pid = -1;
  FILE* out = nullptr;
};

Child spawn_writer(const std::string& dir, int steps, double megabytes, bool stop_at_phases) {
  int fds[2];
  EXPECT_EQ(::pipe(fds), 0);
  Child c;
  c.pid = ::fork();
  if (c.pid == 0) {
    ::dup2(fds[1], 1);
    ::close(fds[0]);
    if (stop_at_phases) ::setenv("OVR_TEST_STOP_AT_PHASES", "1", 1);
    const std::string s = std::to_string(steps), mb = std::to_string(megabytes);
    ::execl(OVR_WRITER_LOOP, OVR_WRITER_LOOP, dir.c_str(), s.c_str(), mb.c_str(), (char*)nullptr);
    ::_exit(127);
  }
  ::close(fds[1]);
  c.out = ::fdopen(fds[0], "r");
  return c;
}

// What a resumed job would do: open `latest` and read every dataset (checksums checked).
int64_t load_latest_and_check(const std::string& dir) {
  io::CheckpointReader r(dir);
  const int64_t step = r.attrs().step;
  for (const char* d : {"/model/w", "/optim/exp_avg"}) {
    const auto info = r.info(d);
    std::vector<float> v(size_t(info.numel()));
    r.read(d, v.data());
    for (float x : v)
      if (x != float(step)) throw std::runtime_error(std::string(d) + " holds a value of another step");
  }
  return step;
}

}  // namespace

TEST(CheckpointCrash, KilledAtEachPhaseOfAWriteLatestStaysLoadable) {
  // (phase at which step 2 is killed, step that `latest` must then name)
  const std::vector<std::pair<std::string, int64_t>> cases = {
      {"begin", 1}, {"mid-write", 1}, {"data-written", 1}, {"closed", 1}, {"renamed", 1}, {"latest-updated", 2}};
  for (const auto& [phase, expected] : cases) {
    const std::string dir = test::temp_dir("crash_" + phase);
    Child c = spawn_writer(dir, 3, 2.0, /*stop_at_phases=*/true);
    char line[256];
    bool killed = false;
    while (std::fgets(line, sizeof line, c.out)) {
      int status = 0;
      ASSERT_EQ(::waitpid(c.pid, &status, WUNTRACED), c.pid);  // stopped right after printing
      ASSERT_TRUE(WIFSTOPPED(status)) << line;
      if (std::string(line) == "phase " + phase + " 2\n") {
        ::kill(c.pid, SIGKILL);
        killed = true;
        break;
      }
      ::kill(c.pid, SIGCONT);
    }
    ASSERT_TRUE(killed) << "the writer never reached phase " << phase;
    ::waitpid(c.pid, nullptr, 0);
    std::fclose(c.out);
    EXPECT_EQ(load_latest_and_check(dir), expected) << "killed at " << phase;
    // A restarted writer overwrites the leftovers and commits the next checkpoints normally.
    std::string out;
    ASSERT_EQ(test::run_command(std::string(OVR_WRITER_LOOP) + " " + dir + " 3 0.5", &out), 0) << out;
    EXPECT_EQ(load_latest_and_check(dir), 3);
  }
}

TEST(CheckpointCrash, KilledAtRandomMomentsLatestStaysLoadable) {
  std::mt19937 rng(12345);
  for (int trial = 0; trial < 12; ++trial) {
    const std::string dir = test::temp_dir("crash_random");
    Child c = spawn_writer(dir, 1000, 8.0, /*stop_at_phases=*/false);
    char line[256];
    // Wait for the first commit so that there is something to keep, then kill at a random time.
    while (std::fgets(line, sizeof line, c.out))
      if (std::string(line) == "phase latest-updated 1\n") break;
    std::this_thread::sleep_for(std::chrono::microseconds(rng() % 150000));
    ::kill(c.pid, SIGKILL);
    ::waitpid(c.pid, nullptr, 0);
    std::fclose(c.out);
    EXPECT_GE(load_latest_and_check(dir), 1) << "trial " << trial;
  }
}
