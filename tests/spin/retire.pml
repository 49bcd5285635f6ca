/* retire.pml — a removed worker's inbox (runtime/sched/workers.c: retire,
 * shoal__adopt, grow; runtime/sched/sched.c: shoal__submit's check of the
 * retired flag) as a Promela model for spin. The property: no task pushed
 * to the inbox of a worker that a shrink removes is stranded — each is
 * taken exactly once, by the worker's last look, by a sender that adopts
 * the inbox, or by the thread of a grow that brings the worker back — and
 * the inbox never has two consumers at once.
 *
 * The inbox is Vyukov's intrusive MPSC queue: a push is an exchange of
 * the head (its place in the order) and then a store of the link from the
 * node before; a pop stops at a node whose link is not yet written, so a
 * push between its two steps hides the pushes after it. The model keeps
 * the order as slots: a push takes the next slot (the exchange), then
 * marks it linked; a pop takes the next slot only when it is linked.
 *
 * Promela is sequentially consistent. The C code orders each side's store
 * before its load with a Dekker fence (shoal__dekker): the worker's store
 * of `retired` before its last look at the inbox, the sender's push
 * before its load of `retired`. resize_mu is the lock below.
 *
 * Sizes: S senders, each pushing one task to the worker after reading a
 * count that still included it; REVIVE: a grow brings the worker back
 * once it has retired (its new thread then owns the inbox).
 *
 * BROKEN=1 drops the sender's check of `retired` after its push (it
 * trusts the count it read): spin must then find a stranded task. */

#ifndef S
#define S 2
#endif
#ifndef REVIVE
#define REVIVE 0
#endif
#ifndef BROKEN
#define BROKEN 0
#endif

byte reserved = 0; /* slots handed out by the head exchange */
bool linked[S];    /* the link to slot i written */
byte taken = 0;    /* slots popped, in order */
bit retired = 0;
bit mu = 0;        /* rt->resize_mu */
byte consumers = 0;
byte done = 0;     /* processes finished */
bit revived = 0;
bit worker_done = 0;

inline lock() {
  atomic { mu == 0 -> mu = 1 }
}

inline unlock() {
  mu = 0
}

/* Pops while the next slot is linked (each pop hands the task on to a
 * worker that stays, which runs it). */
inline drain() {
  consumers++;
  assert(consumers == 1);
  do
  :: taken < reserved && linked[taken] -> taken++
  :: else -> break
  od;
  consumers--
}

/* The removed worker: out of its loop, it takes the lock, raises the flag,
 * fences, and looks at its inbox for the last time. */
proctype worker() {
  lock();
  retired = 1;
  drain();
  unlock();
  worker_done = 1;
  done++
}

/* A sender that read the count before the shrink: its push, the fence,
 * then the flag; seen raised, it adopts the inbox (again under the lock,
 * where a grow may have lowered it meanwhile). */
proctype sender() {
  byte slot;
  atomic { slot = reserved; reserved++ }
  linked[slot] = true;
#if !BROKEN
  if
  :: retired ->
     lock();
     if
     :: retired -> drain()
     :: else -> skip
     fi;
     unlock()
  :: else -> skip /* the worker's own thread will look (park's model) */
  fi;
#endif
  done++
}

/* A grow after the shrink: the flag lowered under the lock, then a new
 * thread that owns the inbox and looks whenever something is linked (a
 * sender that saw the flag down wakes it; park.pml checks that part). */
proctype grow() {
  worker_done == 1; /* after the worker has retired */
  lock();
  retired = 0;
  revived = 1;
  unlock();
  do
  :: taken == S -> break
  :: atomic { taken < reserved && linked[taken] -> consumers++ };
     assert(consumers == 1);
     taken++;
     consumers--
  od;
  done++
}

init {
  byte i;
  atomic {
    run worker();
    for (i : 1 .. S) {
      run sender()
    }
#if REVIVE
    run grow();
#endif
  }
  /* Everyone finished, then every task was taken: a stranded one leaves
   * this process blocked, an invalid end state. */
  done == S + 1 + REVIVE;
  taken == S;
  assert(taken == reserved)
}
