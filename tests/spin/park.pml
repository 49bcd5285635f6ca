/* park.pml — the runtime's worker parking protocol (runtime/sched/sched.c: park,
 * unpark, claim_idle, wake_one, shoal__signal_work, pick_target and
 * shoal__submit, the searching count, shoal_runtime_destroy's stop) as a
 * Promela model for spin. The property is the absence of lost wake-ups:
 * the host, which submits tasks from outside and then waits for all of
 * them to run and for every worker to leave at destroy, never waits for
 * ever (spin reports such a state as an invalid end state).
 *
 * Promela is sequentially consistent. The C code orders the accesses that
 * matter with seq_cst read-modify-writes and a Dekker fence
 * (shoal__dekker) between each side's store and its loads — the parker's
 * idle bit before its re-check of the queues, the pusher's push before its
 * load of the idle bits and of `searching` — so the model checks the
 * protocol's logic under the order those fences give. Relaxed loads that
 * are only hints (wake_one's scan of the idle bits) are separate steps
 * from the claim that decides, as in the code.
 *
 * Sizes: N workers (1 … N; worker 0, the host's slot, is the host thread
 * below, outside the runtime), EXTERNAL tasks submitted from outside
 * (alternately through the injection queue and through a worker's inbox),
 * each run task spawning one more onto its worker's deque until SPAWNS
 * have been spawned. A parked worker may also wake on its own deadline
 * (the anticipation of the next tick) or spuriously, OWN_WAKES times.
 *
 * BROKEN=1 drops the re-check after the idle bit (the parker sleeps on
 * what it saw before announcing itself): spin must then find a lost
 * wake-up — the check that the model can fail. */

#ifndef N
#define N 3
#endif
#ifndef EXTERNAL
#define EXTERNAL 2
#endif
#ifndef SPAWNS
#define SPAWNS 2
#endif
#ifndef OWN_WAKES
#define OWN_WAKES 1
#endif
#ifndef BROKEN
#define BROKEN 0
#endif
#define LIMIT ((N / 2) > 0 -> (N / 2) : 1) /* searchers at once */
#define TOTAL (EXTERNAL + SPAWNS)

#define ASLEEP 0
#define AWAKE 1

byte dq = 0;        /* tasks in the workers' deques: anyone may steal */
byte inject = 0;    /* tasks in the injection queue */
byte inbox[N];      /* tasks pushed to one worker's inbox */
bool idle[N];       /* rt->idle_bits */
bit park[N];        /* w->park */
byte searching = 0; /* rt->wanted >> 32 (the searchers; the low half,
                       the wanting count, is a hint the model leaves out) */
byte done = 0;      /* tasks that have run */
byte spawned = 0;
bool stopping = false;
byte exited = 0;

#define work_visible (dq > 0 || inject > 0)

/* claim_idle: atomic fetch_and; got says whether this call cleared it. */
inline claim_idle(i, got) {
  atomic { got = idle[i]; idle[i] = false }
}

/* unpark: the release store, then futex_wake (the guard in park's wait
 * becomes true). */
inline unpark(i) {
  park[i] = AWAKE
}

inline wake_one() {
  k = 0;
  do
  :: k < N ->
     if
     :: idle[k] -> /* a relaxed load: a hint */
        claim_idle(k, got);
        if
        :: got -> unpark(k); break
        :: else -> skip
        fi
     :: else -> skip
     fi;
     k++
  :: else -> break
  od
}

/* shoal__signal_work, after its Dekker fence */
inline signal_work() {
  if
  :: searching != 0 -> skip /* a searcher will find it */
  :: else -> wake_one()
  fi
}

/* shoal__find_work: own inbox, own deque or a steal, the injection queue */
inline take(me, found) {
  atomic {
    if
    :: inbox[me] > 0 -> inbox[me]--; found = true
    :: dq > 0 -> dq--; found = true
    :: inject > 0 -> inject--; found = true
    :: else -> found = false
    fi
  }
}

proctype worker(byte me) {
  bool found, got, spawn;
  byte k, own_wakes = 0;
  do
  :: take(me, found);
     if
     :: found -> goto ran
     :: else -> skip
     fi;
idle_top:
     if
     :: stopping -> goto leave
     :: else -> skip
     fi;
     if
     :: searching < LIMIT ->
        searching++;
        take(me, found);
        searching--;
        if
        :: found ->
           /* the last searcher to find work wakes another (Go's wakep) */
           if
           :: searching == 0 && work_visible -> wake_one()
           :: else -> skip
           fi;
           goto ran
        :: else -> skip
        fi;
        if
        :: stopping -> goto leave
        :: else -> skip
        fi
     :: else ->
        take(me, found);
        if
        :: found -> goto ran
        :: else -> skip
        fi
     fi;
     /* park */
     park[me] = ASLEEP;
     idle[me] = true; /* seq_cst fetch_or, then the Dekker fence */
#if BROKEN
     if
     :: true ->
#else
     if
     :: work_visible || inbox[me] > 0 || stopping ->
        claim_idle(me, got) /* !got: a waker claimed it first */
     :: else ->
#endif
end_wait:
        if
        :: park[me] == AWAKE -> skip
        :: own_wakes < OWN_WAKES -> /* its own deadline, or a spurious
                    * return: take the bit back unless a waker did, then
                    * look again (bounded, so that a lost wake-up still
                    * ends in a state where nothing can move) */
           own_wakes++;
           claim_idle(me, got)
        fi
     fi;
     goto idle_top;
ran:
     done++;
     atomic { /* the task's body decides, one task at a time */
       spawn = spawned < SPAWNS;
       spawned = spawned + spawn
     }
     if
     :: spawn -> /* a spawn: its own deque, then signal */
        dq++;
        signal_work()
     :: else -> skip
     fi
  od;
leave:
  exited++
}

/* The host: submits from outside, waits for the tasks, destroys. */
proctype host() {
  byte n = 0, k, target, rr = 0;
  bool got, claimed;
  do
  :: n < EXTERNAL && n % 2 == 0 -> /* shoal_group_run: inject + signal */
     inject++;
     signal_work();
     n++
  :: n < EXTERNAL && n % 2 == 1 -> /* shoal__submit, home < 0 */
     claimed = false;
     k = 0;
     do /* pick_target: an idle worker, claimed first */
     :: k < N ->
        if
        :: idle[k] ->
           claim_idle(k, got);
           if
           :: got -> claimed = true; target = k; break
           :: else -> skip
           fi
        :: else -> skip
        fi;
        k++
     :: else -> break
     od;
     if
     :: !claimed -> target = rr; rr = (rr + 1) % N
     :: else -> skip
     fi;
     inbox[target]++;
     if
     :: claimed -> unpark(target)
     :: else -> /* Dekker fence, then the target's bit */
        claim_idle(target, got);
        if
        :: got -> unpark(target)
        :: else -> skip
        fi
     fi;
     n++
  :: n == EXTERNAL -> break
  od;
  /* waits for every task: a lost wake-up leaves it here for ever */
  done == TOTAL;
  /* shoal_runtime_destroy: stopping, the fence, every idle worker woken */
  stopping = true;
  k = 0;
  do
  :: k < N ->
     claim_idle(k, got);
     if
     :: got -> unpark(k)
     :: else -> skip
     fi;
     k++
  :: else -> break
  od;
  exited == N; /* pthread_join */
  assert(dq == 0 && inject == 0 && done == TOTAL)
}

init {
  byte i = 0;
  atomic {
    do
    :: i < N -> park[i] = AWAKE; run worker(i); i++
    :: else -> break
    od;
    run host()
  }
}
