#include "daemon/bpf_programs.hpp"

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fmt/format.h>
#include <linux/magic.h>
#include <spdlog/spdlog.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <vector>

#include "baton_abi.h"
#include "tc_egress.skel.h"
#include "tc_ingress.skel.h"

namespace baton {

namespace {
std::string errstr(int err) {
  return std::strerror(err < 0 ? -err : err);
}

// libbpf prints the verifier log through this; route it to our log.
int libbpf_print(enum libbpf_print_level level, const char* fmt, va_list args) {
  if (level == LIBBPF_DEBUG) return 0;
  char buf[4096];
  int n = vsnprintf(buf, sizeof(buf), fmt, args);
  std::string line(buf, n > 0 ? std::min<size_t>(static_cast<size_t>(n), sizeof(buf) - 1) : 0);
  while (!line.empty() && line.back() == '\n')
    line.pop_back();
  // Creating the clsact hook when it exists already is expected (see attach); not worth a warning.
  if (line.find("Exclusivity flag on") != std::string::npos) level = LIBBPF_INFO;
  if (level == LIBBPF_WARN) {
    spdlog::warn("libbpf: {}", line);
  } else {
    spdlog::debug("libbpf: {}", line);
  }
  return 0;
}

template <class Skel>
void configure(Skel* s, const BpfLoadOptions& o) {
  s->rodata->cfg_service_addr = htonl(o.service_addr);
  s->rodata->cfg_service_port = htons(o.service_port);
  s->rodata->cfg_node_id = o.node_id;
  const uint32_t capacity = flow_map_capacity(o.max_flows);
  bpf_map__set_max_entries(s->maps.baton_fe_flows, capacity);
  bpf_map__set_max_entries(s->maps.baton_fe_handoffs, capacity);
  bpf_map__set_max_entries(s->maps.baton_be_flows, capacity);
  bpf_map__set_max_entries(s->maps.baton_fe_triage, o.max_flows);
}

// libbpf refuses to reuse a pinned map whose shape differs from the object's (another max_flows, an
// older batond with other map types) and says only "Invalid argument". Find such maps first: empty ones
// are replaced; if one holds flows nothing is touched and the error says why, since replacing it would
// cut those connections.
Status check_pinned_maps(bpf_object* obj, const std::string& pin_dir) {
  std::vector<std::string> misfits;
  bpf_map* map = nullptr;
  bpf_object__for_each_map(map, obj) {
    const char* path = bpf_map__pin_path(map);
    if (!path) continue;
    int fd = bpf_obj_get(path);
    if (fd < 0) continue;  // not pinned yet: created at load
    bpf_map_info info{};
    uint32_t len = sizeof(info);
    const bool same =
        bpf_obj_get_info_by_fd(fd, &info, &len) == 0 && info.type == bpf_map__type(map) &&
        info.key_size == bpf_map__key_size(map) && info.value_size == bpf_map__value_size(map) &&
        info.max_entries == bpf_map__max_entries(map) && info.map_flags == bpf_map__map_flags(map);
    bool empty = true;
    if (!same && info.key_size > 0 && info.key_size <= 64 && info.type != BPF_MAP_TYPE_ARRAY &&
        info.type != BPF_MAP_TYPE_PERCPU_ARRAY && info.type != BPF_MAP_TYPE_RINGBUF) {
      uint8_t key[64];
      empty = bpf_map_get_next_key(fd, nullptr, key) != 0;
    }
    close(fd);
    if (same) continue;
    if (!empty) {
      return make_error(fmt::format(
          "the pinned map {} (type {}, {} entries) holds flows but does not fit this batond (type {}, {} "
          "entries): it was made by another version or with another max_flows. Its flows cannot be "
          "adopted; stop the batond that uses them without --keep-flows, or remove {} (their connections "
          "break)",
          path, info.type, info.max_entries, static_cast<uint32_t>(bpf_map__type(map)),
          bpf_map__max_entries(map), pin_dir));
    }
    misfits.emplace_back(path);
  }
  for (const auto& path : misfits) {
    spdlog::warn(
        "bpf: pinned map {} has another shape than this batond's (another version or max_flows) "
        "and holds no flow: replaced",
        path);
    if (unlink(path.c_str()) != 0)
      return make_error(fmt::format("cannot remove {}: {}", path, errstr(errno)));
  }
  return Ok{};
}
}  // namespace

Status ensure_bpffs() {
  struct statfs st {};
  if (statfs("/sys/fs/bpf", &st) == 0 && st.f_type == BPF_FS_MAGIC) return Ok{};
  if (mount("bpf", "/sys/fs/bpf", "bpf", 0, nullptr) != 0) {
    return make_error("no bpffs at /sys/fs/bpf and cannot mount one: " + errstr(errno));
  }
  spdlog::info("mounted bpffs at /sys/fs/bpf");
  return Ok{};
}

Result<std::unique_ptr<BpfPrograms>> BpfPrograms::load(const BpfLoadOptions& o) {
  libbpf_set_print(libbpf_print);
  if (auto s = ensure_bpffs(); !s) return make_error(s.error());
  std::error_code ec;
  std::filesystem::create_directories(o.pin_dir, ec);
  if (ec) return make_error("cannot create " + o.pin_dir + ": " + ec.message());

  std::unique_ptr<BpfPrograms> p(new BpfPrograms());
  p->pin_dir_ = o.pin_dir;
  LIBBPF_OPTS(bpf_object_open_opts, open_opts, .pin_root_path = p->pin_dir_.c_str());
  p->ingress_ = baton_tc_ingress__open_opts(&open_opts);
  if (!p->ingress_) return make_error("cannot open the ingress BPF object: " + errstr(errno));
  configure(p->ingress_, o);
  if (auto s = check_pinned_maps(p->ingress_->obj, p->pin_dir_); !s) return make_error(s.error());
  if (int err = baton_tc_ingress__load(p->ingress_)) {
    return make_error("the kernel refused the ingress BPF program (" + errstr(err) +
                      "); the verifier's reasons are in the log above");
  }
  // The egress object finds the maps pinned by the first one and shares them.
  p->egress_ = baton_tc_egress__open_opts(&open_opts);
  if (!p->egress_) return make_error("cannot open the egress BPF object: " + errstr(errno));
  configure(p->egress_, o);
  if (int err = baton_tc_egress__load(p->egress_)) {
    return make_error("the kernel refused the egress BPF program (" + errstr(err) +
                      "); the verifier's reasons are in the log above");
  }
  return p;
}

BpfPrograms::~BpfPrograms() {
  detach();
  if (egress_) baton_tc_egress__destroy(egress_);
  if (ingress_) baton_tc_ingress__destroy(ingress_);
}

namespace {
// Our filters on the clsact hook, the same on ingress and egress.
constexpr uint32_t kFilterHandle = 0xba70;
constexpr uint32_t kFilterPriority = 1;
}  // namespace

// Whether batond created the clsact qdisc on the interface is recorded in a pinned map: the qdisc is
// then ours to remove, also for the batond that starts after a crash. Without the record the qdisc
// belongs to whoever made it, and only our filters go.
uint32_t BpfPrograms::qdisc_record() const {
  uint32_t key = BATON_RECORD_QDISC_OURS, value = 0;
  bpf_map_lookup_elem(bpf_map__fd(ingress_->maps.baton_records), &key, &value);
  return value;
}

void BpfPrograms::set_qdisc_record(uint32_t value) {
  uint32_t key = BATON_RECORD_QDISC_OURS;
  bpf_map_update_elem(bpf_map__fd(ingress_->maps.baton_records), &key, &value, BPF_ANY);
}

Status BpfPrograms::attach(int ifindex) {
  if (attached_) return Ok{};
  LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = BPF_TC_INGRESS);
  int err = bpf_tc_hook_create(&hook);
  if (err && err != -EEXIST) return make_error("cannot create the clsact qdisc: " + errstr(err));
  const uint32_t ours = static_cast<uint32_t>(ifindex) + 1;
  if (err == 0) set_qdisc_record(ours);
  created_qdisc_ = err == 0 || qdisc_record() == ours;
  ifindex_ = ifindex;
  const std::pair<bpf_tc_attach_point, int> points[] = {{BPF_TC_INGRESS, ingress_prog_fd()},
                                                        {BPF_TC_EGRESS, egress_prog_fd()}};
  for (const auto& [point, fd] : points) {
    hook.attach_point = point;
    LIBBPF_OPTS(bpf_tc_opts, opts, .prog_fd = fd, .handle = kFilterHandle, .priority = kFilterPriority);
    // A filter of ours left by a crash: replace it.
    opts.flags = BPF_TC_F_REPLACE;
    if ((err = bpf_tc_attach(&hook, &opts))) {
      attached_ = true;
      detach();
      return make_error(std::string("cannot attach the tc ") +
                        (point == BPF_TC_INGRESS ? "ingress" : "egress") + " program: " + errstr(err));
    }
  }
  attached_ = true;
  return Ok{};
}

void BpfPrograms::detach() {
  if (!attached_) return;
  for (auto point : {BPF_TC_EGRESS, BPF_TC_INGRESS}) {
    LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex_, .attach_point = point);
    LIBBPF_OPTS(bpf_tc_opts, opts, .handle = kFilterHandle, .priority = kFilterPriority);
    bpf_tc_detach(&hook, &opts);
  }
  if (created_qdisc_) {
    LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex_,
                .attach_point = static_cast<bpf_tc_attach_point>(BPF_TC_INGRESS | BPF_TC_EGRESS));
    bpf_tc_hook_destroy(&hook);
    set_qdisc_record(0);
    created_qdisc_ = false;
  }
  attached_ = false;
}

void BpfPrograms::unpin() {
  bpf_object__unpin_maps(ingress_->obj, nullptr);
  bpf_object__unpin_maps(egress_->obj, nullptr);
  std::error_code ec;
  std::filesystem::remove(pin_dir_, ec);
}

uint64_t BpfPrograms::flow_map_bytes() const {
  uint64_t total = 0;
  for (int fd : {fe_flows_fd(), fe_handoffs_fd(), be_flows_fd(), fe_triage_fd()}) {
    std::ifstream in("/proc/self/fdinfo/" + std::to_string(fd));
    std::string field;
    uint64_t value = 0;
    while (in >> field) {
      if (field == "memlock:" && in >> value) total += value;
    }
  }
  return total;
}

int BpfPrograms::fe_flows_fd() const {
  return bpf_map__fd(ingress_->maps.baton_fe_flows);
}
int BpfPrograms::fe_handoffs_fd() const {
  return bpf_map__fd(ingress_->maps.baton_fe_handoffs);
}
int BpfPrograms::be_flows_fd() const {
  return bpf_map__fd(ingress_->maps.baton_be_flows);
}
int BpfPrograms::fe_triage_fd() const {
  return bpf_map__fd(ingress_->maps.baton_fe_triage);
}
int BpfPrograms::content_fd() const {
  return bpf_map__fd(ingress_->maps.baton_content);
}
int BpfPrograms::runtime_fd() const {
  return bpf_map__fd(ingress_->maps.baton_runtime);
}
int BpfPrograms::counters_fd() const {
  return bpf_map__fd(ingress_->maps.baton_counters);
}

int BpfPrograms::drops_fd() const {
  return bpf_map__fd(ingress_->maps.baton_drops);
}
int BpfPrograms::events_fd() const {
  return bpf_map__fd(ingress_->maps.baton_events);
}
int BpfPrograms::ingress_prog_fd() const {
  return bpf_program__fd(ingress_->progs.baton_ingress);
}
int BpfPrograms::egress_prog_fd() const {
  return bpf_program__fd(egress_->progs.baton_egress);
}

}  // namespace baton
