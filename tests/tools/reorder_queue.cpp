// reorder_queue: a fault injector for the integration tests (this kernel has no netem). It takes the
// packets an iptables NFQUEUE rule hands it and lets some of them be overtaken: a chosen packet is held
// until 1 to 3 later packets of the same direction have passed (or 20 ms went by), then released. What
// is chosen follows a seeded generator, so a failing run can be replayed with the same seed.
//
// Usage: reorder_queue --queue N --port P --percent X --seed S --stats FILE
//   direction: packets to port P are "out" (client -> server), from port P "in".
//   On SIGTERM/SIGINT it releases what it holds, writes "packets_out=.. reordered_out=.. packets_in=..
//   reordered_in=.." to FILE and exits.
#include <arpa/inet.h>
#include <libnetfilter_queue/libnetfilter_queue.h>
#include <linux/netfilter.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <random>
#include <string>

namespace {

volatile sig_atomic_t g_stop = 0;
void on_signal(int) {
  g_stop = 1;
}

using Clock = std::chrono::steady_clock;

struct Held {
  uint32_t id;
  uint64_t release_after;  // this direction's packet count at which it goes
  Clock::time_point deadline;
};

struct Direction {
  uint64_t packets = 0;
  uint64_t reordered = 0;
  std::deque<Held> held;
};

struct Reorderer {
  nfq_q_handle* qh = nullptr;
  uint16_t port = 80;
  unsigned percent = 5;
  std::mt19937_64 rng;
  Direction dirs[2];  // 0: to the port (out), 1: from it (in)

  void accept(uint32_t id) { nfq_set_verdict(qh, id, NF_ACCEPT, 0, nullptr); }

  void release_due(Direction& d, bool all) {
    const auto now = Clock::now();
    while (!d.held.empty()) {
      const Held& h = d.held.front();
      if (!all && h.release_after > d.packets && h.deadline > now) break;
      accept(h.id);
      d.held.pop_front();
    }
  }

  void on_packet(uint32_t id, const unsigned char* p, int len) {
    int dir = 0;
    if (len >= 24 && (p[0] >> 4) == 4 && p[9] == IPPROTO_TCP) {
      const int l4 = (p[0] & 0x0f) * 4;
      if (len >= l4 + 4) {
        uint16_t sport = static_cast<uint16_t>(p[l4] << 8 | p[l4 + 1]);
        dir = sport == port ? 1 : 0;
      }
    }
    Direction& d = dirs[dir];
    ++d.packets;
    if (d.held.size() < 4 && rng() % 100 < percent) {
      d.held.push_back({id, d.packets + 1 + rng() % 3, Clock::now() + std::chrono::milliseconds(20)});
      ++d.reordered;
      return;
    }
    accept(id);             // this one overtakes what is held...
    release_due(d, false);  // ...and those whose turn has come follow it
  }
};

int on_queue(nfq_q_handle*, nfgenmsg*, nfq_data* nfa, void* data) {
  auto* r = static_cast<Reorderer*>(data);
  nfqnl_msg_packet_hdr* ph = nfq_get_msg_packet_hdr(nfa);
  if (!ph) return 0;
  unsigned char* payload = nullptr;
  int len = nfq_get_payload(nfa, &payload);
  r->on_packet(ntohl(ph->packet_id), payload, len);
  return 0;
}

[[noreturn]] void usage() {
  std::fprintf(stderr, "usage: reorder_queue --queue N --port P --percent X --seed S --stats FILE\n");
  std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
  unsigned queue = 0, port = 80, percent = 5;
  uint64_t seed = 1;
  std::string stats;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i];
    const char* v = argv[i + 1];
    if (k == "--queue")
      queue = static_cast<unsigned>(std::strtoul(v, nullptr, 10));
    else if (k == "--port")
      port = static_cast<unsigned>(std::strtoul(v, nullptr, 10));
    else if (k == "--percent")
      percent = static_cast<unsigned>(std::strtoul(v, nullptr, 10));
    else if (k == "--seed")
      seed = std::strtoull(v, nullptr, 10);
    else if (k == "--stats")
      stats = v;
    else
      usage();
  }
  if (argc % 2 == 0 || stats.empty() || percent > 100 || port == 0 || port > 65535) usage();

  Reorderer r;
  r.port = static_cast<uint16_t>(port);
  r.percent = percent;
  r.rng.seed(seed);
  nfq_handle* h = nfq_open();
  if (!h) {
    std::perror("nfq_open");
    return 1;
  }
  r.qh = nfq_create_queue(h, static_cast<uint16_t>(queue), &on_queue, &r);
  if (!r.qh || nfq_set_mode(r.qh, NFQNL_COPY_PACKET, 128) < 0) {
    std::fprintf(stderr, "reorder_queue: cannot bind queue %u\n", queue);
    return 1;
  }
  nfq_set_queue_maxlen(r.qh, 8192);
  signal(SIGTERM, on_signal);
  signal(SIGINT, on_signal);
  std::printf("ready\n");
  std::fflush(stdout);
  const int fd = nfq_fd(h);
  alignas(8) char buf[65536];
  while (!g_stop) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 5) > 0) {
      ssize_t n = recv(fd, buf, sizeof(buf), 0);
      if (n > 0) nfq_handle_packet(h, buf, static_cast<int>(n));
    }
    for (auto& d : r.dirs)
      r.release_due(d, false);  // held past their deadline: traffic paused
  }
  for (auto& d : r.dirs)
    r.release_due(d, true);
  nfq_destroy_queue(r.qh);
  nfq_close(h);
  FILE* f = std::fopen(stats.c_str(), "w");
  if (!f) return 1;
  std::fprintf(f, "packets_out=%llu reordered_out=%llu packets_in=%llu reordered_in=%llu\n",
               static_cast<unsigned long long>(r.dirs[0].packets),
               static_cast<unsigned long long>(r.dirs[0].reordered),
               static_cast<unsigned long long>(r.dirs[1].packets),
               static_cast<unsigned long long>(r.dirs[1].reordered));
  std::fclose(f);
  return 0;
}
