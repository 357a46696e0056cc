// runtime.cpp: the launch machinery of cuda_sim.h, compiled once into a shared library that
// every simulated kernel library links against (Linux: the barriers sleep on futexes).
//
// A pool of worker threads (grown on demand, up to 1024, kept for later launches: creating a
// thread costs tens of microseconds) runs the blocks of a grid one at a time: the launcher
// wakes worker t for thread t of the block, waits until all have returned, checks the shared
// memory guard, and goes on with the next block. A thread that returns leaves the barriers;
// a barrier waits at most `timeout_s`, then reports a deadlock and unwinds its thread (an
// exception, caught by the worker).

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdarg>
#include <cstdio>
#include <memory>
#include <mutex>
#include <semaphore>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "cuda_sim.h"

namespace {

constexpr unsigned kMaxThreads = 1024, kWarp = 32;
constexpr size_t kGuard = 64;  // bytes checked after the dynamic shared memory
constexpr unsigned char kGuardByte = 0xA5, kPoisonByte = 0xFF;  // 0xFF..: a NaN

struct Deadlock : std::runtime_error {
  using std::runtime_error::runtime_error;
};

void fail(const char* format, ...);

// Sleep while *word == value, at most `seconds` (a futex: the waker needs no lock from us).
void futex_wait(std::atomic<unsigned>* word, unsigned value, double seconds) {
  timespec ts{(time_t)seconds, (long)((seconds - (time_t)seconds) * 1e9)};
  syscall(SYS_futex, reinterpret_cast<unsigned*>(word), FUTEX_WAIT_PRIVATE, value, &ts, nullptr,
          0);
}

void futex_wake_all(std::atomic<unsigned>* word) {
  syscall(SYS_futex, reinterpret_cast<unsigned*>(word), FUTEX_WAKE_PRIVATE, INT32_MAX, nullptr,
          nullptr, 0);
}

// A barrier that threads may leave. Threads that meet at different call sites (source lines)
// are reported: on the GPU that is undefined behaviour. The waiters sleep on a generation
// counter (a futex), so a release wakes them without a lock to fight over.
class Barrier {
 public:
  void reset(unsigned count) {  // only while nobody waits
    expected_ = count;
    arrived_ = 0;
  }

  void wait(int line, const char* what, double timeout_s) {
    unsigned generation;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (arrived_ == 0) {
        line_ = line;
      } else if (line != line_) {
        fail("threads met at different %s: line %d and line %d", what, line_, line);
      }
      generation = generation_.load();
      if (++arrived_ == expected_) {
        release();
        return;
      }
    }
    const auto deadline = std::chrono::steady_clock::now() +
                          std::chrono::duration<double>(timeout_s);
    while (generation_.load() == generation) {
      const double left =
          std::chrono::duration<double>(deadline - std::chrono::steady_clock::now()).count();
      if (left <= 0) {
        std::lock_guard<std::mutex> lock(mu_);
        if (generation_.load() != generation) break;
        --arrived_;
        throw Deadlock("waited " + std::to_string(timeout_s) + " s at " + what + " (line " +
                       std::to_string(line) + "): a deadlock");
      }
      futex_wait(&generation_, generation, left);
    }
  }

  void leave() {
    std::lock_guard<std::mutex> lock(mu_);
    --expected_;
    if (arrived_ > 0 && arrived_ == expected_) release();
  }

 private:
  void release() {  // with mu_ held
    arrived_ = 0;
    ++generation_;
    futex_wake_all(&generation_);
  }

  std::mutex mu_;
  unsigned expected_ = 0, arrived_ = 0;
  int line_ = 0;  // the call site of the threads waiting now
  std::atomic<unsigned> generation_{0};
};

// A shuffle writes the caller's value to its lane's slot, waits for the warp, and reads the
// source lane's slot. Shuffles alternate between two sets of slots, so that one barrier per
// shuffle suffices: a lane can only write a set again after the next barrier, which every
// lane reaches after its read. A slot also says which shuffle wrote it (`seq`): a lane that
// did not take part (not in the block, or returned) has an older number.
struct Warp {
  Barrier barrier;
  struct Slot {
    uint64_t value;
    unsigned seq;
  } slots[2][kWarp];

  void reset(unsigned size) {
    barrier.reset(size);
    for (auto& set : slots)
      for (auto& slot : set) slot.seq = 0;
  }
};

struct Launch {
  cuda_sim_body body;
  void** args;
  unsigned block[3], n_threads;
  unsigned block_idx[3];
  double timeout_s;
  std::vector<unsigned char> shared;  // the dynamic shared memory, then the guard
  Barrier block_barrier;
  Warp warps[kMaxThreads / kWarp];
  std::mutex error_mu;
  std::string error;  // the first failure
};

Launch* launch_ = nullptr;  // the launch running now (one at a time)
thread_local bool worker_ = false;  // whether this thread is a worker of the pool
thread_local unsigned thread_ = 0;  // a worker's linear thread index in its block
thread_local unsigned shuffles_ = 0;  // the shuffles this thread has made in its block

void fail(const char* format, ...) {
  char text[512];
  va_list ap;
  va_start(ap, format);
  std::vsnprintf(text, sizeof text, format, ap);
  va_end(ap);
  std::lock_guard<std::mutex> lock(launch_->error_mu);
  if (launch_->error.empty()) {
    const unsigned* b = launch_->block_idx;
    launch_->error = std::string(text) + " [block (" + std::to_string(b[0]) + ", " +
                     std::to_string(b[1]) + ", " + std::to_string(b[2]) + ")" +
                     (worker_ ? ", thread " + std::to_string(thread_) : std::string()) + "]";
  }
}

// ---------------------------------------------------------------------------- the pool

struct Worker {
  std::binary_semaphore go{0};
};

std::vector<Worker*>* workers_ = new std::vector<Worker*>;  // never freed: detached threads
std::counting_semaphore<> done_{0};
std::atomic<unsigned> remaining_{0};

void run_thread(unsigned t) {
  Launch& L = *launch_;
  thread_ = t;
  shuffles_ = 0;
  const unsigned bx = L.block[0], by = L.block[1];
  const unsigned idx[6] = {t % bx, t / bx % by, t / (bx * by),
                           L.block_idx[0], L.block_idx[1], L.block_idx[2]};
  try {
    L.body(L.args, idx);
  } catch (const std::exception& e) {
    fail("%s", e.what());
  }
  L.warps[t / kWarp].barrier.leave();
  L.block_barrier.leave();
}

void worker_loop(Worker* self, unsigned t) {
  worker_ = true;
  for (;;) {
    self->go.acquire();
    run_thread(t);
    if (--remaining_ == 0) done_.release();
  }
}

void grow_pool(unsigned n) {
  while (workers_->size() < n) {
    Worker* w = new Worker;
    std::thread(worker_loop, w, (unsigned)workers_->size()).detach();
    workers_->push_back(w);
  }
}

}  // namespace

// ---------------------------------------------------------------------------- the C API

extern "C" int cuda_sim_launch(const unsigned* grid, const unsigned* block, size_t shared_bytes,
                               cuda_sim_body body, void** args, double timeout_s, char* error,
                               size_t error_len) {
  static std::mutex one_at_a_time;
  std::lock_guard<std::mutex> lock(one_at_a_time);
  auto L = std::make_unique<Launch>();
  L->body = body;
  L->args = args;
  std::copy(block, block + 3, L->block);
  L->n_threads = block[0] * block[1] * block[2];
  L->timeout_s = timeout_s;
  if (L->n_threads == 0 || L->n_threads > kMaxThreads || grid[0] * grid[1] * grid[2] == 0) {
    std::snprintf(error, error_len, "bad launch geometry: %u threads per block", L->n_threads);
    return 1;
  }
  L->shared.resize(shared_bytes + kGuard);
  launch_ = L.get();
  grow_pool(L->n_threads);
  for (unsigned z = 0; z < grid[2] && L->error.empty(); ++z) {
    for (unsigned y = 0; y < grid[1] && L->error.empty(); ++y) {
      for (unsigned x = 0; x < grid[0] && L->error.empty(); ++x) {
        L->block_idx[0] = x, L->block_idx[1] = y, L->block_idx[2] = z;
        L->block_barrier.reset(L->n_threads);
        for (unsigned w = 0; w * kWarp < L->n_threads; ++w)
          L->warps[w].reset(std::min(kWarp, L->n_threads - w * kWarp));
        std::fill(L->shared.begin(), L->shared.end() - kGuard, kPoisonByte);
        std::fill(L->shared.end() - kGuard, L->shared.end(), kGuardByte);
        remaining_ = L->n_threads;
        for (unsigned t = 0; t < L->n_threads; ++t) (*workers_)[t]->go.release();
        done_.acquire();  // every thread of the block has returned
        if (std::any_of(L->shared.end() - kGuard, L->shared.end(),
                        [](unsigned char c) { return c != kGuardByte; })) {
          fail("wrote past the end of the %zu bytes of dynamic shared memory", shared_bytes);
        }
      }
    }
  }
  launch_ = nullptr;
  std::snprintf(error, error_len, "%s", L->error.c_str());
  return L->error.empty() ? 0 : 1;
}

extern "C" void* cuda_sim_dynamic_shared(void) { return launch_->shared.data(); }

// The kernels are compiled with -fsanitize=alignment (and linked without the sanitizer's own
// runtime), so every load and store through a typed pointer checks its address and calls this
// on a misaligned one: a float4 read from an address that is not a multiple of 16 faults on the
// GPU ("misaligned address"); here it fails the launch. The data starts with the source
// location (file, line, column), as in GCC's and Clang's sanitizer ABI.
extern "C" void __ubsan_handle_type_mismatch_v1(void* data, void* pointer) {
  struct Location {
    const char* file;
    unsigned line, column;
  };
  const Location* where = static_cast<const Location*>(data);
  fail("misaligned address %p (%s:%u)", pointer, where->file, where->line);
}

extern "C" void cuda_sim_syncthreads(int line) {
  launch_->block_barrier.wait(line, "__syncthreads", launch_->timeout_s);
}

extern "C" uint64_t cuda_sim_shuffle(uint64_t bits, unsigned mask, unsigned src, int line) {
  Launch& L = *launch_;
  const unsigned lane = thread_ % kWarp, seq = ++shuffles_;
  Warp& w = L.warps[thread_ / kWarp];
  Warp::Slot* slots = w.slots[seq % 2];
  if (!(mask >> lane & 1u)) fail("a shuffle (line %d) from lane %u, outside its mask", line, lane);
  slots[lane] = {bits, seq};
  w.barrier.wait(line, "warp shuffles", L.timeout_s);  // every running lane has written
  if (src >= kWarp || slots[src].seq != seq) {
    fail("a shuffle (line %d) in lane %u read lane %u, which is not running (a partial warp "
         "or a thread that returned): undefined on the GPU", line, lane, src);
    return bits;
  }
  if (!(mask >> src & 1u)) {
    fail("a shuffle (line %d) in lane %u read lane %u, outside the mask", line, lane, src);
    return bits;
  }
  return slots[src].value;
}
