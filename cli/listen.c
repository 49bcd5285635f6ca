/* listen.c — `shoal stress --listen`: the run's metrics served live for
 * Prometheus to scrape (and the rendering --prometheus shares). A minimal
 * HTTP/1.1 responder on its own thread:
 * one socket (loopback unless another address is named), one connection
 * at a time, one request per connection, requests of at most 8 KiB read
 * within 2 s; GET (or HEAD) /metrics answers with
 * shoal_metrics_prometheus, anything else with a 404 or 405. */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "cli.h"

#define REQUEST_MAX 8192
#define READ_TIMEOUT_S 2

struct cli_listener {
  int fd, stop[2]; /* the socket; a pipe whose write end stops the thread */
  shoal_mgr *mgr;
  shoal_actors *actors;
  pthread_t th;
  int running; /* th started */
  char *body; /* the last rendering's buffer, reused */
  size_t body_cap;
  unsigned long served;
};

/* Splits "HOST:PORT", ":PORT" or "PORT" (host: loopback). 0, or -1 with
 * err filled. */
static int split_addr(const char *spec, char *host, size_t hostlen,
                      char *port, size_t portlen, char *err, size_t errlen) {
  const char *colon = strrchr(spec, ':');
  const char *p = colon != NULL ? colon + 1 : spec;
  size_t hl = colon != NULL ? (size_t)(colon - spec) : 0;
  unsigned long v;
  if (cli_parse_uint(p, 0, 65535, &v) != 0) {
    snprintf(err, errlen, "--listen wants HOST:PORT with a port in 0 … "
             "65535, not '%s'", spec);
    return -1;
  }
  if (hl >= hostlen || strlen(p) >= portlen) {
    snprintf(err, errlen, "--listen: '%s' is too long", spec);
    return -1;
  }
  if (hl == 0) {
    snprintf(host, hostlen, "127.0.0.1");
  } else {
    memcpy(host, spec, hl);
    host[hl] = '\0';
  }
  snprintf(port, portlen, "%s", p);
  return 0;
}

static int bind_to(const char *spec, char *err, size_t errlen) {
  char host[256], port[8];
  struct addrinfo hints, *res = NULL, *ai;
  int fd = -1, on = 1, rc;
  if (split_addr(spec, host, sizeof host, port, sizeof port, err, errlen))
    return -1;
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  if ((rc = getaddrinfo(host, port, &hints, &res)) != 0) {
    snprintf(err, errlen, "--listen %s: %s", spec, gai_strerror(rc));
    return -1;
  }
  for (ai = res; ai != NULL; ai = ai->ai_next) {
    fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC,
                ai->ai_protocol);
    if (fd < 0)
      continue;
    (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 16) == 0)
      break;
    rc = errno;
    close(fd);
    fd = -1;
    errno = rc;
  }
  if (fd < 0)
    snprintf(err, errlen, "--listen %s: %s", spec, strerror(errno));
  freeaddrinfo(res);
  return fd;
}

/* The port the socket got (the one asked for, or the system's for 0). */
static unsigned bound_port(int fd) {
  struct sockaddr_storage ss;
  socklen_t n = sizeof ss;
  if (getsockname(fd, (struct sockaddr *)&ss, &n) != 0)
    return 0;
  if (ss.ss_family == AF_INET)
    return ntohs(((struct sockaddr_in *)&ss)->sin_port);
  if (ss.ss_family == AF_INET6)
    return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
  return 0;
}

static void send_all(int fd, const char *p, size_t n) {
  while (n > 0) {
    ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
    if (k <= 0)
      return; /* the scraper went away: nothing to keep */
    p += k;
    n -= (size_t)k;
  }
}

static void reply(int fd, const char *status, const char *type,
                  const char *body, size_t len, int head_only) {
  char hdr[256];
  int n = snprintf(hdr, sizeof hdr,
                   "HTTP/1.1 %s\r\nContent-Type: %s\r\n"
                   "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                   status, type, len);
  send_all(fd, hdr, (size_t)n);
  if (!head_only)
    send_all(fd, body, len);
}

long cli_prom_text(shoal_mgr *mgr, shoal_actors *actors, char **buf,
                   size_t *cap) {
  for (int tries = 0; tries < 4; tries++) {
    size_t len = 0;
    int rc = shoal_metrics_prometheus(mgr, actors, *buf, *cap, &len);
    char *b;
    if (rc == SHOAL_OK)
      return (long)len;
    if (rc != SHOAL_ENOSPC)
      return -1;
    /* room for the figures to grow before the next rendering */
    if ((b = realloc(*buf, len + len / 4 + 1024)) == NULL)
      return -1;
    *buf = b;
    *cap = len + len / 4 + 1024;
  }
  return -1;
}

/* Reads the request head (to the blank line); its length, or -1. */
static long read_head(int fd, char *buf, size_t cap) {
  size_t n = 0;
  while (n + 1 < cap) {
    ssize_t k = recv(fd, buf + n, cap - 1 - n, 0);
    if (k <= 0)
      return -1;
    n += (size_t)k;
    buf[n] = '\0';
    if (strstr(buf, "\r\n\r\n") != NULL || strstr(buf, "\n\n") != NULL)
      return (long)n;
  }
  return -1; /* too long */
}

/* The request line, METHOD SP TARGET SP HTTP/1.x (RFC 9112, 3): 0 with
 * the method and the target copied out, -1 when it is not one. */
static int request_line(const char *req, char *method, size_t mcap,
                        char *path, size_t pcap) {
  size_t m = strspn(req, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"), p;
  const char *t = req + m + 1, *v;
  if (m == 0 || m >= mcap || req[m] != ' ')
    return -1;
  p = strcspn(t, " \r\n");
  v = t + p;
  if (p == 0 || p >= pcap || *v != ' ' || strncmp(v + 1, "HTTP/1.", 7) != 0)
    return -1;
  memcpy(method, req, m);
  method[m] = '\0';
  memcpy(path, t, p);
  path[p] = '\0';
  return 0;
}

static void serve(cli_listener *l, int fd) {
  static const char text[] = "text/plain; charset=utf-8";
  char req[REQUEST_MAX], method[8], path[256];
  struct timeval tv = {READ_TIMEOUT_S, 0};
  int head;
  long len;
  (void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  (void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  if (read_head(fd, req, sizeof req) < 0 ||
      request_line(req, method, sizeof method, path, sizeof path) != 0) {
    reply(fd, "400 Bad Request", text, "bad request\n", 12, 0);
    return;
  }
  head = strcmp(method, "HEAD") == 0;
  if (!head && strcmp(method, "GET") != 0) {
    reply(fd, "405 Method Not Allowed", text, "GET or HEAD\n", 12, 0);
    return;
  }
  if (strcmp(path, "/metrics") != 0 && strncmp(path, "/metrics?", 9) != 0) {
    reply(fd, "404 Not Found", text, "the metrics are at /metrics\n", 28,
          head);
    return;
  }
  if ((len = cli_prom_text(l->mgr, l->actors, &l->body, &l->body_cap)) < 0) {
    reply(fd, "500 Internal Server Error", text, "no metrics\n", 11, head);
    return;
  }
  reply(fd, "200 OK", "text/plain; version=0.0.4; charset=utf-8", l->body,
        (size_t)len, head);
  l->served++;
}

static void *listener_main(void *arg) {
  cli_listener *l = arg;
  struct pollfd p[2] = {{l->fd, POLLIN, 0}, {l->stop[0], POLLIN, 0}};
  for (;;) {
    int fd;
    if (poll(p, 2, -1) < 0) {
      if (errno == EINTR)
        continue;
      break;
    }
    if (p[1].revents != 0)
      break;
    if (!(p[0].revents & POLLIN))
      continue;
    if ((fd = accept4(l->fd, NULL, NULL, SOCK_CLOEXEC)) < 0)
      continue;
    serve(l, fd);
    close(fd);
  }
  return NULL;
}

int cli_listen_bind(cli_listener **out, const char *prog, const char *spec) {
  cli_listener *l = calloc(1, sizeof *l);
  const char *colon = strrchr(spec, ':');
  char err[300];
  *out = NULL;
  if (l == NULL) {
    cli_usage_error(prog, "--listen: out of memory");
    return -1;
  }
  l->stop[0] = l->stop[1] = -1;
  if ((l->fd = bind_to(spec, err, sizeof err)) < 0) {
    free(l);
    cli_usage_error(prog, "%s", err);
    return -1;
  }
  if (pipe(l->stop) != 0) {
    cli_usage_error(prog, "--listen: %s", strerror(errno));
    close(l->fd);
    free(l);
    return -1;
  }
  fprintf(stderr, "%s: metrics at http://%.*s:%u/metrics\n", prog,
          colon != NULL && colon > spec ? (int)(colon - spec) : 9,
          colon != NULL && colon > spec ? spec : "127.0.0.1",
          bound_port(l->fd));
  *out = l;
  return 0;
}

int cli_listen_serve(cli_listener *l, shoal_mgr *mgr, shoal_actors *actors) {
  l->mgr = mgr;
  l->actors = actors;
  if (pthread_create(&l->th, NULL, listener_main, l) != 0)
    return -1;
  l->running = 1;
  return 0;
}

unsigned long cli_listen_stop(cli_listener *l) {
  unsigned long served;
  if (l == NULL)
    return 0;
  if (l->running) {
    (void)!write(l->stop[1], "x", 1);
    pthread_join(l->th, NULL);
  }
  close(l->stop[0]);
  close(l->stop[1]);
  close(l->fd);
  served = l->served;
  free(l->body);
  free(l);
  return served;
}
