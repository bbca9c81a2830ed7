// kevent/internal/inode_origin.h: the KEVENT_INODE origin (changes in a watched directory).
//
// id.raw[0] = an open directory fd (O_RDONLY or O_PATH; the request watches the directory itself,
// so it follows a rename of it and does not need the fd after ADD); id.raw[1] = 0. event is
// KEVENT_INODE_CREATE (an entry created, or moved in), KEVENT_INODE_REMOVE (an entry deleted, or
// moved out), or both; a rename inside the directory is one of each. Each change is one
// occurrence; delivered ret_data[0] = changes since the last delivery, ret_data[1] = which kinds
// of them (CREATE / REMOVE bits, within the request's event). Never ready at ADD.
// Rejections: EBADF (not an open fd), ENOTDIR (not a directory), EINVAL (event or id),
// EOPNOTSUPP (the queue has no Poller), and whatever inotify_add_watch says (ENOSPC when
// fs.inotify.max_user_watches is reached...).
// If the directory itself is deleted (or its filesystem unmounted), its requests break:
// BROKEN|DONE with ENOENT. The kernel reports a deletion when the directory's inode is freed,
// i.e. once no process holds it open any more (including the fd given at ADD). If the kernel's
// inotify queue overflowed, every request of the queue gets one occurrence of both kinds (changes
// were lost; rescan).
//
// Implementation: one inotify fd per queue (created at the first ADD), polled on the queue's
// Poller; one inotify watch per directory (kernel watches are per inode, so two fds of one
// directory share it), added through /proc/self/fd/<fd>, removed with its last request.
//
// Example:
//   int dir = open("/tmp/spool", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
//   ukevent uk{};
//   uk.type = KEVENT_INODE;
//   uk.event = KEVENT_INODE_CREATE;
//   uk.id.raw[0] = dir;
//   queue.Ctl(KEVENT_CTL_ADD, uk);   // a file created in /tmp/spool readies it
//
// Threading: as the owning queue.
#ifndef KEV_KEVENT_INTERNAL_INODE_ORIGIN_H_
#define KEV_KEVENT_INTERNAL_INODE_ORIGIN_H_

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "kevent/internal/origin.h"
#include "kevent/internal/readable_watch.h"

namespace kev::kevent_internal {

class InodeOrigin final : public Origin, private ReadableWatch::Listener {
 public:
  explicit InodeOrigin(OriginContext& context) : context_(context) {}
  ~InodeOrigin() override;

  int Enqueue(Request& r) override;
  void Dequeue(Request& r) override;
  // A change, once reported, holds until delivered; accumulates the kinds into ret_data[1].
  int Check(Request& r) override;
  void Fill(const Request& r, ukevent& out) override { out.ret_data[0] = r.pending; }

 private:
  // One watched directory: the requests watching it, from this queue.
  struct Directory : Storage {
    int wd = -1;
    uint32_t requests = 0;
    bool gone = false;  // the kernel dropped the watch (IN_IGNORED)
  };

  int EnsureInotify();
  void OnReadable() override;
  void Forget(Directory& d);  // no requests left: remove the kernel watch and the entry
  void Sweep();

  OriginContext& context_;
  ReadableWatch* watch_ = nullptr;                                    // owns the inotify fd
  absl::flat_hash_map<int, std::unique_ptr<Directory>> directories_;  // by inotify wd
  // While OnReadable dispatches, directories left without requests wait here (a Break inside
  // the dispatch must not destroy the Storage it is walking).
  bool dispatching_ = false;
  std::vector<int> idle_;
  uint32_t current_ = 0;  // the kinds of the change being dispatched (for Check)
};

}  // namespace kev::kevent_internal

#endif  // KEV_KEVENT_INTERNAL_INODE_ORIGIN_H_
