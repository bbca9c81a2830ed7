#include "kevent/internal/inode_origin.h"

#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>

#include "kevent/internal/queue.h"

namespace kev::kevent_internal {
namespace {

constexpr uint32_t kCreated = IN_CREATE | IN_MOVED_TO;
constexpr uint32_t kRemoved = IN_DELETE | IN_MOVED_FROM;
constexpr uint32_t kAllKinds = KEVENT_INODE_CREATE | KEVENT_INODE_REMOVE;

uint32_t Kinds(uint32_t mask) {
  return ((mask & kCreated) != 0 ? KEVENT_INODE_CREATE : 0) |
         ((mask & kRemoved) != 0 ? KEVENT_INODE_REMOVE : 0);
}

}  // namespace

InodeOrigin::~InodeOrigin() {
  // Requests are gone (the queue removes them first); closing the inotify fd drops its watches.
  if (watch_ != nullptr) watch_->Release();
}

int InodeOrigin::EnsureInotify() {
  if (watch_ != nullptr) return 0;
  const int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (fd < 0) return -errno;
  watch_ = ReadableWatch::Start(*context_.poller(), fd, this);
  return 0;
}

int InodeOrigin::Enqueue(Request& r) {
  r.storage = nullptr;  // Dequeue's "accounted" mark: set by Attach below
  if (context_.poller() == nullptr) return -EOPNOTSUPP;
  if (r.uk.event == 0 || (r.uk.event & ~kAllKinds) != 0 || r.uk.id.raw[1] != 0) return -EINVAL;
  const int fd = static_cast<int>(r.uk.id.raw[0]);
  struct stat st;
  if (fd < 0 || fstat(fd, &st) != 0) return -EBADF;
  if (!S_ISDIR(st.st_mode)) return -ENOTDIR;
  int rc = EnsureInotify();
  if (rc < 0) return rc;
  char path[32];
  std::snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
  const int wd = inotify_add_watch(watch_->fd(), path, kCreated | kRemoved | IN_ONLYDIR);
  if (wd < 0) return -errno;
  std::unique_ptr<Directory>& d = directories_[wd];
  if (d == nullptr) {
    d = std::make_unique<Directory>();  // once per watched directory
    d->wd = wd;
  }
  d->gone = false;
  ++d->requests;
  d->Attach(r);
  return 0;
}

void InodeOrigin::Dequeue(Request& r) {
  // Dequeue may come twice (a broken request is dequeued, then unregistered): account once.
  if (r.storage == nullptr) return;
  auto* d = static_cast<Directory*>(r.storage);
  d->Detach(r);
  r.storage = nullptr;
  if (--d->requests > 0) return;
  if (dispatching_) {
    idle_.push_back(d->wd);
  } else {
    Forget(*d);
  }
}

void InodeOrigin::Forget(Directory& d) {
  // After IN_IGNORED the kernel has dropped the watch, and its wd may already name another one.
  if (!d.gone) inotify_rm_watch(watch_->fd(), d.wd);
  directories_.erase(d.wd);
}

void InodeOrigin::Sweep() {
  for (int wd : idle_) {
    auto it = directories_.find(wd);
    if (it != directories_.end() && it->second->requests == 0) Forget(*it->second);
  }
  idle_.clear();
}

int InodeOrigin::Check(Request& r) {
  // Kinds since the last delivery: reset by the first change after it (pending is 0 then).
  const uint32_t kinds = current_ & r.uk.event;
  r.uk.ret_data[1] = r.pending == 0 ? kinds : (r.uk.ret_data[1] | kinds);
  return 1;
}

void InodeOrigin::OnReadable() {
  alignas(inotify_event) char buf[4096];
  dispatching_ = true;
  ssize_t n;
  while ((n = read(watch_->fd(), buf, sizeof(buf))) > 0) {
    for (ssize_t off = 0; off < n;) {
      const auto* e = reinterpret_cast<const inotify_event*>(buf + off);
      off += static_cast<ssize_t>(sizeof(inotify_event) + e->len);
      if ((e->mask & IN_Q_OVERFLOW) != 0) {
        current_ = kAllKinds;  // changes were lost: tell everyone once
        for (auto& [wd, d] : directories_) d->Ready(kAllKinds);
        continue;
      }
      auto it = directories_.find(e->wd);
      if (it == directories_.end()) continue;  // a watch removed earlier
      Directory& d = *it->second;
      if ((e->mask & IN_IGNORED) != 0) {
        d.gone = true;
        d.Break(ENOENT);  // the directory was deleted or its filesystem unmounted
        continue;
      }
      current_ = Kinds(e->mask);
      if (current_ != 0) d.Ready(current_);
    }
  }
  current_ = 0;
  dispatching_ = false;
  Sweep();
}

}  // namespace kev::kevent_internal
