// messaging_moody.cpp — the queue cases of the messaging suite for
// moodycamel::ReaderWriterQueue (SPSC, ping-pong) and
// moodycamel::ConcurrentQueue (MPSC), with the same loops as shoal's
// (bench/queues.h).
#include <concurrentqueue/concurrentqueue.h>
#include <readerwriterqueue/readerwriterqueue.h>

#include "queues.h"

typedef moodycamel::ReaderWriterQueue<uint64_t> rwq;
typedef moodycamel::ConcurrentQueue<uint64_t> cq;

static rwq *rwq_new(size_t cap) { return new rwq(cap); }
static cq *cq_new(size_t cap) { return new cq(cap); }
#define RWQ_PUSH(q, v) (q)->try_enqueue(v)
#define RWQ_POP(q, p) (q)->try_dequeue(*(p))
// ConcurrentQueue grows on demand; its enqueue is the common use.
#define CQ_PUSH(q, v) (q)->enqueue(v)
#define CQ_POP(q, p) (q)->try_dequeue(*(p))
MQ_DEFINE(m_rwq, rwq, rwq_new, RWQ_PUSH, RWQ_POP)
MQ_DEFINE(m_cq, cq, cq_new, CQ_PUSH, CQ_POP)

int main(int argc, char **argv) {
  int quick;
  const char *only;
  mq_parse(argc, argv, &quick, &only);
  mq_tsc_calibrate();
  m_rwq_cases("moodycamel", quick, only, MQ_SPSC);
  m_cq_cases("moodycamel", quick, only, MQ_MPSC);
  return 0;
}
