/* mail.pml — the sessions' mail bits (sessions/packets.c: reserve,
 * inbox_push, shoal__pk_take; sessions/packets.h: shoal__pk_mail_take and
 * shoal__pk_mail_set; sessions/tick.c: the tick's test) as a Promela model
 * for spin. The property: no packet is stranded. Once every sender has
 * finished, a session whose inbox still counts packets has its mail bit
 * up, so that some later tick takes them; the consumer below ticks until
 * the bit is down and then asserts that nothing is counted.
 *
 * Promela is sequentially consistent. The C code makes the bit's RMWs a
 * release (the set) and an acquire (the clear), so that a tick that finds
 * the bit sees the reservation and the push made before it; the count is
 * one word changed only by RMWs. The model checks the protocol's logic
 * under that order.
 *
 * Sizes: S senders sending K packets each to one session, whose updates
 * take at most LIMIT packets each (MaxPacketsPerUpdate). A send reserves
 * (the count's CAS, remembering whether it found 0), pushes (the packet
 * becomes visible to the consumer), then raises the bit if it found 0:
 * three steps, so a tick can run between any two of them.
 *
 * BROKEN=1 drops the take's second raise (the bit left down when packets
 * are still counted after a take): spin must then find a stranded packet,
 * the check that the model can fail. */

#ifndef S
#define S 2
#endif
#ifndef K
#define K 2
#endif
#ifndef LIMIT
#define LIMIT 1
#endif
#ifndef BROKEN
#define BROKEN 0
#endif
#define TOTAL (S * K)

byte count = 0;   /* the inbox word's count: reserved, not yet taken */
byte pushed = 0;  /* packets pushed: what a pop can see */
byte taken = 0;   /* packets the consumer has popped */
bit mail = 0;     /* the session's mail bit */
byte finished = 0; /* senders done with all their steps */

proctype sender() {
  byte k = 0;
  bit first;
  do
  :: k < K ->
     /* reserve: the CAS on the inbox word */
     atomic { first = (count == 0); count++ }
     /* push: the packet reachable from the inbox */
     pushed++;
     /* the bit after the push, when the count was 0 (an RMW) */
     if
     :: first -> mail = 1
     :: else -> skip
     fi;
     k++
  :: else -> break
  od;
  finished++
}

/* The tick: a due session's bit taken (tested, then cleared), up to
 * LIMIT packets popped of those pushed, the count lowered by them; the bit
 * raised again when the count says more are on their way or waiting. */
proctype consumer() {
  byte n, left;
  do
  :: mail == 1 ->
     mail = 0;
     n = 0;
     do
     :: n < LIMIT && taken < pushed -> taken++; n++
     :: else -> break
     od;
     atomic { count = count - n; left = count }
#if !BROKEN
     if
     :: left != 0 -> mail = 1
     :: else -> skip
     fi
#endif
  :: finished == S && mail == 0 -> break
  od;
  /* every sender done, the bit down: nothing may still be counted */
  assert(count == 0 && taken == TOTAL)
}

init {
  byte i = 0;
  atomic {
    do
    :: i < S -> run sender(); i++
    :: else -> break
    od;
    run consumer()
  }
}
