#include "emu.h"
std::vector<Fiber> fibers; int cur; ucontext_t sched; dim3 gridDim, blockIdx, blockDim; double shfl_slot[1024];
static std::function<void()>* gbody;
static void entry() { (*gbody)(); fibers[cur].done = true; swapcontext(&fibers[cur].ctx, &sched); }
void launch(unsigned grid, unsigned block, std::function<void()> body) {
  gbody = &body; gridDim.x = grid; blockDim.x = block;
  for (unsigned b = 0; b < grid; b++) {
    blockIdx.x = b; fibers.assign(block, Fiber());
    for (unsigned t = 0; t < block; t++) {
      Fiber& f = fibers[t]; f.tid = t; f.stack.resize(1 << 16); getcontext(&f.ctx);
      f.ctx.uc_stack.ss_sp = f.stack.data(); f.ctx.uc_stack.ss_size = f.stack.size(); f.ctx.uc_link = nullptr;
      makecontext(&f.ctx, entry, 0);
    }
    for (;;) {
      bool progress = false, alldone = true;
      for (unsigned t = 0; t < block; t++) {
        if (fibers[t].done) continue; alldone = false;
        if (fibers[t].waiting) continue;
        cur = t; swapcontext(&sched, &fibers[t].ctx); progress = true;
      }
      if (alldone) break;
      if (!progress) {
        // everyone live is waiting: release complete groups
        bool released = false;
        bool blockAll = true; for (auto& f : fibers) if (!f.done && f.waiting != 1) blockAll = false;
        if (blockAll) { for (auto& f : fibers) if (!f.done) f.waiting = 0; released = true; }
        else for (unsigned w = 0; w * 32 < block; w++) {
          bool all = true, any = false;
          for (unsigned t = w * 32; t < w * 32 + 32 && t < block; t++) if (!fibers[t].done) { any = true; if (fibers[t].waiting != 2) all = false; }
          if (any && all) { for (unsigned t = w * 32; t < w * 32 + 32 && t < block; t++) fibers[t].waiting = 0; released = true; }
        }
        if (!released) { fprintf(stderr, "deadlock in block %u\n", b); exit(3); }
      }
    }
  }
}
