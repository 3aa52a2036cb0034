#include "daemon/nfqueue_datapath.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/netfilter.h>
#include <linux/netlink.h>
#include <netinet/in.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

extern "C" {
#include <libnetfilter_queue/libnetfilter_queue.h>
}

#include "core/packet.hpp"
#include "core/worker_hash.hpp"
#include "daemon/command.hpp"

namespace baton {

namespace {
constexpr const char* kChainIn = "BATON_IN";
constexpr const char* kChainOut = "BATON_OUT";
constexpr const char* kChainFwd = "BATON_FWD";

std::string hex(uint32_t v) {
  char b[16];
  std::snprintf(b, sizeof(b), "0x%x", v);
  return b;
}

// Jumps from the built-in chains into ours: {table, chain, match...}. Installed once, removed at stop.
const std::vector<std::vector<std::string>>& jumps() {
  static const std::vector<std::vector<std::string>> j = {
      // Packets that batond injects itself arrive on lo: never queue them a second time.
      {"raw", "PREROUTING", "!", "-i", "lo", "-j", kChainIn},
      {"raw", "OUTPUT", "-j", kChainOut},
      {"filter", "FORWARD", "-j", kChainFwd},
  };
  return j;
}

std::vector<std::string> jump_command(const std::vector<std::string>& j, const std::string& op) {
  std::vector<std::string> v{"iptables", "-w", "-t", j[0], op, j[1]};
  if (op == "-I") v.push_back("1");
  v.insert(v.end(), j.begin() + 2, j.end());
  return v;
}

void remove_rules() {
  // Leftovers of a crashed run are removed the same way; errors mean "was not there".
  for (const auto& j : jumps()) {
    for (int i = 0; i < 8 && run_command(jump_command(j, "-D")).exit_code == 0; ++i) {
    }
  }
  for (const char* table : {"raw", "filter"}) {
    for (const char* chain : {kChainIn, kChainOut, kChainFwd}) {
      if (run_command({"iptables", "-w", "-t", table, "-F", chain}).exit_code == 0) {
        run_command({"iptables", "-w", "-t", table, "-X", chain});
      }
    }
  }
}
}  // namespace

std::string worker_match(bool ingress, uint32_t workers, uint32_t worker) {
  // A classic BPF program for iptables' bpf match, run on the IP header: true when the client's address
  // and port hash to `worker`. The client is the source on ingress, the destination on egress; every
  // node computes the same, so a flow's front end and back end give it to the same worker. The hash is
  // worker_of's (core/worker_hash.hpp).
  const uint32_t bits = worker_hash_bits(workers);
  const uint32_t port_at = ingress ? 0 : 2;    // in the TCP header
  const uint32_t addr_at = ingress ? 12 : 16;  // in the IP header
  const std::vector<sock_filter> prog = {
      BPF_STMT(BPF_LDX | BPF_B | BPF_MSH, 0),                      // X = IP header length
      BPF_STMT(BPF_LD | BPF_H | BPF_IND, port_at),                 // A = the client's port
      BPF_STMT(BPF_ST, 0),                                         // M[0] = A
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, addr_at),                 // A = the client's address
      BPF_STMT(BPF_LDX | BPF_W | BPF_MEM, 0),                      // X = M[0]
      BPF_STMT(BPF_ALU | BPF_XOR | BPF_X, 0),                      // A ^= X
      BPF_STMT(BPF_ALU | BPF_MUL | BPF_K, kWorkerHashMultiplier),  // A *= golden ratio
      BPF_STMT(BPF_ALU | BPF_RSH | BPF_K, 32 - bits),              // A = its top bits
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, worker, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, 1),
      BPF_STMT(BPF_RET | BPF_K, 0),
  };
  std::string code = std::to_string(prog.size());
  for (const auto& i : prog)
    code += "," + std::to_string(i.code) + " " + std::to_string(i.jt) + " " + std::to_string(i.jf) + " " +
            std::to_string(i.k);
  return code;
}

std::string NfqueueDatapath::ruleset() const {
  const std::string addr = format_ipv4(opts_.service_addr);
  const std::string port = std::to_string(opts_.service_port);
  const std::string in = "-A " + std::string(kChainIn) + " -p tcp -d " + addr + " --dport " + port;
  const std::string out = "-A " + std::string(kChainOut) + " -p tcp -s " + addr + " --sport " + port;
  // RULE to its worker's queue: the rule once per worker, each matching its share of the clients.
  auto queued = [&](const std::string& rule) {
    const bool ingress = rule.starts_with(in);
    std::string lines;
    for (uint32_t w = 0; w < opts_.workers; ++w) {
      lines += rule;
      if (opts_.workers > 1)
        lines += " -m bpf --bytecode \"" + worker_match(ingress, opts_.workers, w) + "\"";
      lines += " -j NFQUEUE --queue-num " + std::to_string(opts_.queue_num + w) + " --queue-bypass\n";
    }
    return lines;
  };
  std::string r = "*raw\n:" + std::string(kChainIn) + " - [0:0]\n:" + kChainOut + " - [0:0]\n";
  // Connection tracking would call the forwarded and the asymmetric halves INVALID: keep it out of the
  // service port entirely, as IPVS does. The raw table runs before conntrack (priority -300).
  r += in + " -j CT --notrack\n";
  r += out + " -j CT --notrack\n";
  if (opts_.slow_mark) {
    // Under the kernel datapath: only what tc ingress marked (SYNs, flows being decided).
    r += queued(in + " -m mark --mark " + hex(opts_.slow_mark) + "/" + hex(opts_.slow_mark));
  } else {
    // --queue-bypass: while batond is not running, packets go to the local stack, not to a black hole.
    r += queued(in);
    // Egress: every SYN/ACK (the front end learns ISN1 and the options it granted) ...
    r += queued(out + " --tcp-flags SYN,ACK SYN,ACK");
    // ... and every packet of a replayed connection, which carries our mark (tcp_fwmark_accept copies
    // the replayed SYN's mark to the socket; fwmark_reflect copies it to the stack's resets).
    r += queued(out + " -m mark --mark " + hex(opts_.mark));
    // ... and the ends of connections the stack accepted itself: one served here and watched may move
    // away, and then its socket's FIN or reset must not reach the client (Backend::adopt_local_socket).
    r += queued(out + " --tcp-flags FIN FIN");
    r += queued(out + " --tcp-flags RST RST");
  }
  r += "COMMIT\n*filter\n:" + std::string(kChainFwd) + " - [0:0]\n";
  for (uint32_t peer : opts_.peer_service_addrs) {
    r += "-A " + std::string(kChainFwd) + " -p tcp -d " + format_ipv4(peer) + " --dport " + port +
         " -j ACCEPT\n";
  }
  r += "COMMIT\n";
  return r;
}

Status NfqueueDatapath::load_ruleset() {
  // --noflush: only our chains, which the rule set declares (and so flushes and refills), change, in one
  // transaction.
  CommandResult r = run_command({"iptables-restore", "-w", "--noflush"}, ruleset());
  if (r.exit_code != 0)
    return make_error("iptables-restore failed: " + r.output + "rules were:\n" + ruleset());
  return Ok{};
}

Status NfqueueDatapath::install_rules() {
  remove_rules();
  if (auto s = load_ruleset(); !s) {
    remove_rules();
    return s;
  }
  for (const auto& j : jumps()) {
    CommandResult r = run_command(jump_command(j, "-I"));
    if (r.exit_code != 0) {
      remove_rules();
      return make_error("iptables: cannot hook " + j[0] + " " + j[1] + ": " + r.output);
    }
  }
  rules_installed_ = true;
  return Ok{};
}

Status NfqueueDatapath::set_slow_mark(uint32_t slow_mark) {
  if (slow_mark == opts_.slow_mark) return Ok{};
  uint32_t before = opts_.slow_mark;
  opts_.slow_mark = slow_mark;
  if (!rules_installed_) return Ok{};
  if (auto s = load_ruleset(); !s) {
    opts_.slow_mark = before;
    return s;
  }
  return Ok{};
}

Status NfqueueDatapath::update(const DatapathUpdate& u) {
  // New peers' service addresses must pass the FORWARD chain (their forwarded client packets).
  if (u.peer_service_addrs == opts_.peer_service_addrs) return Ok{};
  std::vector<uint32_t> before = std::move(opts_.peer_service_addrs);
  opts_.peer_service_addrs = u.peer_service_addrs;
  if (!rules_installed_) return Ok{};
  if (auto s = load_ruleset(); !s) {
    opts_.peer_service_addrs = std::move(before);
    return s;
  }
  return Ok{};
}

int NfqueueDatapath::on_packet(nfq_q_handle* /*qh*/, nfgenmsg* /*msg*/, nfq_data* nfa, void* data) {
  auto* self = static_cast<NfqueueDatapath*>(data);
  nfqnl_msg_packet_hdr* ph = nfq_get_msg_packet_hdr(nfa);
  if (!ph) return 0;
  unsigned char* payload = nullptr;
  int len = nfq_get_payload(nfa, &payload);
  DatapathPacket p;
  p.id = ntohl(ph->packet_id);
  p.direction = ph->hook == NF_INET_LOCAL_OUT ? Direction::kEgress : Direction::kIngress;
  p.mark = nfq_get_nfmark(nfa);
  if (len < 0) {
    nfq_set_verdict(self->qh_, static_cast<uint32_t>(p.id), NF_ACCEPT, 0, nullptr);
    return 0;
  }
  p.bytes = ByteView(payload, static_cast<size_t>(len));
  self->handler_(p);
  return 0;
}

Status NfqueueDatapath::start(Handler handler, EventHandler /*events: none in user space*/) {
  handler_ = std::move(handler);
  raw_fd_ = socket(AF_INET, SOCK_RAW, IPPROTO_RAW);
  if (raw_fd_ < 0)
    return make_error(std::string("raw socket: ") + std::strerror(errno) + " (batond needs CAP_NET_RAW)");
  if (setsockopt(raw_fd_, SOL_SOCKET, SO_MARK, &opts_.mark, sizeof(opts_.mark)) != 0) {
    stop();
    return make_error(std::string("SO_MARK: ") + std::strerror(errno) + " (batond needs CAP_NET_ADMIN)");
  }
  h_ = nfq_open();
  if (!h_) {
    stop();
    return make_error("nfq_open failed: is nfnetlink_queue available in this kernel?");
  }
  const auto queue = static_cast<uint16_t>(opts_.queue_num + opts_.worker);
  qh_ = nfq_create_queue(h_, queue, &NfqueueDatapath::on_packet, this);
  if (!qh_) {
    stop();
    return make_error("cannot bind NFQUEUE " + std::to_string(queue) +
                      ": another process (another batond?) holds it");
  }
  if (nfq_set_mode(qh_, NFQNL_COPY_PACKET, 0xffff) < 0) {
    stop();
    return make_error("nfq_set_mode failed");
  }
  // Held packets wait in this queue until decided; make room for many flows at once.
  nfq_set_queue_maxlen(qh_, 65536);
  fd_ = nfq_fd(h_);
  nfnl_rcvbufsiz(nfq_nfnlh(h_), 16 * 1024 * 1024);
  int one = 1;
  setsockopt(fd_, SOL_NETLINK, NETLINK_NO_ENOBUFS, &one, sizeof(one));
  fcntl(fd_, F_SETFL, fcntl(fd_, F_GETFL) | O_NONBLOCK);
  // The rules are every worker's: the first one installs and removes them.
  if (opts_.worker == 0) {
    if (auto s = install_rules(); !s) {
      stop();
      return s;
    }
  }
  return Ok{};
}

void NfqueueDatapath::stop() {
  if (rules_installed_) {
    remove_rules();
    rules_installed_ = false;
  }
  if (qh_) {
    nfq_destroy_queue(qh_);
    qh_ = nullptr;
  }
  if (h_) {
    nfq_close(h_);
    h_ = nullptr;
    fd_ = -1;
  }
  if (raw_fd_ >= 0) {
    close(raw_fd_);
    raw_fd_ = -1;
  }
}

bool NfqueueDatapath::read_batch() {
  if (fd_ < 0) return false;
  if (recv_buf_.empty()) recv_buf_.resize(size_t{256} * 1024);
  for (int i = 0; i < 256; ++i) {
    ssize_t n = recv(fd_, recv_buf_.data(), recv_buf_.size(), MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) return false;
      if (errno == ENOBUFS) {
        spdlog::warn("nfqueue: netlink receive buffer overrun, packets were dropped");
        continue;
      }
      spdlog::error("nfqueue recv: {}", std::strerror(errno));
      return false;
    }
    nfq_handle_packet(h_, recv_buf_.data(), static_cast<int>(n));
  }
  return true;
}

void NfqueueDatapath::drain() {
  while (read_batch()) {
  }
}

void NfqueueDatapath::verdict(const Verdict& v) {
  if (!qh_) return;
  uint32_t verdict = v.kind == Verdict::kAccept ? NF_ACCEPT : NF_DROP;
  // A reply of our stack rewritten here (the source is our service): mark it so that a kernel datapath
  // does not rewrite it again. Never a client packet: the stack's answers to it inherit its mark
  // (fwmark_reflect), and tc egress must still see those (a TIME_WAIT's last ACK ends a flow).
  const auto peek = v.replacement.empty() ? std::nullopt : peek_tcp(v.replacement);
  const bool reply = peek && peek->key.saddr == opts_.service_addr && peek->key.sport == opts_.service_port;
  if (v.replacement.empty()) {
    nfq_set_verdict(qh_, static_cast<uint32_t>(v.id), verdict, 0, nullptr);
  } else if (opts_.done_mark && reply) {
    // The only packets we rewrite on egress belong to replayed connections, whose mark is ours.
    nfq_set_verdict2(qh_, static_cast<uint32_t>(v.id), verdict, opts_.mark | opts_.done_mark,
                     static_cast<uint32_t>(v.replacement.size()), v.replacement.data());
  } else {
    nfq_set_verdict(qh_, static_cast<uint32_t>(v.id), verdict, static_cast<uint32_t>(v.replacement.size()),
                    v.replacement.data());
  }
}

void NfqueueDatapath::inject_local(ByteView packet) {
  if (raw_fd_ < 0 || packet.size() < 20) return;
  sockaddr_in dst{};
  dst.sin_family = AF_INET;
  dst.sin_addr.s_addr = htonl(load32(packet, 16));
  if (sendto(raw_fd_, packet.data(), packet.size(), 0, reinterpret_cast<sockaddr*>(&dst), sizeof(dst)) < 0) {
    spdlog::warn("inject: {}", std::strerror(errno));
  }
}

}  // namespace baton
